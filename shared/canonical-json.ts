import { createHash } from 'node:crypto';

/**
 * JSON with object keys sorted at every level, so two documents that differ
 * only in key order (YAML written by hand, JSON from a service) hash the same.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  });
}

/** Short, stable content hash: sha256 of the canonical JSON, 16 hex digits. */
export function contentHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex').slice(0, 16);
}

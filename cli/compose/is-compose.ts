/**
 * Telling a Compose document from an app spec, for the spec-set loader
 * (cli/spec-files.ts), without loading the conversion: top-level `services`
 * and no `spec` (an app spec always has `spec`, and never `services`).
 */
export function isComposeDocument(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && 'services' in value && !('spec' in value);
}

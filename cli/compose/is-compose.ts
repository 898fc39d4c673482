/**
 * Telling a Compose document from an app spec, for the spec-set loader
 * (cli/spec-files.ts), without loading the conversion: top-level `services`
 * and no `spec` (an app spec always has `spec`, and never `services`).
 *
 * And telling a Compose override file by its name, as Compose does
 * (`docker-compose.override.yml` beside `docker-compose.yml`): Flotilla reads
 * each Compose file as a whole app and does not merge one into another.
 */
import { basename } from 'node:path';

export function isComposeDocument(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && 'services' in value && !('spec' in value);
}

/**
 * For an override file's path (`NAME.override.yml`, `NAME.override.yaml`), the names the file
 * it overrides may have, the same extension first (`NAME.yml`, `NAME.yaml`); else undefined.
 */
export function overriddenFiles(path: string): string[] | undefined {
  const match = /^(.+)\.override\.(ya?ml)$/i.exec(basename(path));
  if (!match) return undefined;
  const [, base, extension] = match;
  const other = extension!.toLowerCase() === 'yml' ? 'yaml' : 'yml';
  return [`${base}.${extension}`, `${base}.${other}`];
}

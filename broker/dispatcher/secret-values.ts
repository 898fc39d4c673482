/**
 * Scheduling resolves secrets synchronously (scheduling.ts, a pure function),
 * and the secret store answers asynchronously: the values a pass needs are
 * read first, each once, and looked up from memory while it runs.
 */
import type { SecretStore } from '../store/secrets.js';
import { type ContainersSpec, referencedSecrets, type SecretLookup } from './scheduling.js';

/** Every secret `specs` name, read once; a name with no secret looks up as undefined (MissingSecretError then names it). */
export async function secretValues(secrets: Pick<SecretStore, 'get'>, specs: Iterable<ContainersSpec>): Promise<SecretLookup> {
  const names = new Set<string>();
  for (const spec of specs) for (const name of referencedSecrets(spec)) names.add(name);
  const values = new Map<string, Buffer>();
  for (const name of names) {
    const value = await secrets.get(name);
    if (value !== undefined) values.set(name, value);
  }
  return (name) => values.get(name);
}

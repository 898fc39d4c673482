/**
 * A short fingerprint of a container spec, stored in the `flotilla.spec-hash`
 * label. The planner compares it with the hash of the desired spec to decide
 * keep vs. recreate without reading back and re-deriving every Docker setting.
 *
 * Invariants: the same spec always gives the same hash, whatever the order of
 * object keys (JSON from the hub, YAML from an operator and a spread in the
 * agent may order keys differently); array order is significant (it is for
 * `command`, and keeping it for `env` or `ports` too is the safe side: a
 * spurious recreate is better than a missed one).
 */
import { type ContainerSpec, contentHash, type DesiredApp } from '../../shared/index.js';

/** First 16 hex digits of sha256 over the canonical JSON of the spec without `auth`. */
export function specHash(spec: ContainerSpec): string {
  // `auth` only matters for pulling, which has already happened by the time a
  // container is created. Hashing it would turn a rotated registry password
  // into a recreate (downtime, lost container-local state) of every running
  // container from that registry, for no change in what runs.
  const { auth: _auth, ...rest } = spec;
  return contentHash(rest);
}

/**
 * The hash an app's container runs under: its spec's, and with init containers also theirs.
 * A revision that changes only its init containers is then a new version of every container:
 * the init containers run and the app is swapped in by its update strategy, as it would be
 * for any other change, and a failed init rolls it back the same way. Without init containers
 * it is `specHash(spec)`, so such apps keep their hashes (and their running containers).
 */
export function containerHash(app: Pick<DesiredApp, 'initContainers'>, spec: ContainerSpec): string {
  const own = specHash(spec);
  if (!app.initContainers?.length) return own;
  return contentHash({ container: own, initContainers: app.initContainers.map(specHash) });
}

/**
 * Decides whether the agent acts on a desired document. With the hub's key
 * pinned (`hubKey`), only documents the hub signed, for this device, newer
 * than the one it runs, get through: whoever else can publish on the desired
 * topic (a broker misconfigured, a leaked credential, a replayed capture)
 * cannot make the device run anything. The running containers are never
 * touched by a refusal — a refused document is simply not handed on.
 *
 * Without a pinned key documents are accepted as before signing existed
 * (still newest revision only), and the agent says once that nothing is
 * verified.
 */
import type { KeyObject } from 'node:crypto';
import { type DesiredState, verifyDesired } from '../shared/index.js';

/** Pure decisions; the agent acts on them (reconciler, store, events). */
export type DesiredVerdict =
  | { action: 'accept' }
  /** The retained document again after a reconnect, or a stale one with no key pinned: nothing to say. */
  | { action: 'ignore' }
  /** `reason` groups refusals for the event rate limit; `message` says why, for operators. */
  | { action: 'refuse'; reason: RefusalReason; message: string };

export type RefusalReason = 'unsigned' | 'bad signature' | 'older revision' | 'not newer' | 'other device';

export function checkDesired(
  desired: DesiredState,
  current: DesiredState | undefined,
  hubKey: KeyObject | undefined,
  deviceId: string,
): DesiredVerdict {
  if (desired.deviceId !== deviceId) return refuse(desired, 'other device', `issued for device ${desired.deviceId}, not this one`);
  if (!hubKey) return current && desired.revision <= current.revision ? { action: 'ignore' } : { action: 'accept' };
  const problem = verifyDesired(desired, hubKey);
  if (problem) return refuse(desired, problem, problem);
  if (!current || desired.revision > current.revision) return { action: 'accept' };
  if (desired.revision < current.revision) {
    return refuse(desired, 'older revision', `revision ${desired.revision} is older than the current ${current.revision}`);
  }
  // Ed25519 signatures are deterministic: the same signature is the same document, i.e. the
  // broker's retained copy delivered again after a reconnect. Another document under the same
  // revision number is not something the hub issues.
  if (desired.signature?.value === current.signature?.value) return { action: 'ignore' };
  return refuse(desired, 'not newer', `revision ${desired.revision} is the current one, with different content`);
}

/** For a document restored from the agent's own disk: undefined when it may be used. */
export function checkRestored(desired: DesiredState, hubKey: KeyObject | undefined): string | undefined {
  if (!hubKey) return undefined;
  return verifyDesired(desired, hubKey);
}

function refuse(desired: DesiredState, reason: RefusalReason, why: string): DesiredVerdict {
  return { action: 'refuse', reason, message: `desired state revision ${desired.revision} refused: ${why}` };
}

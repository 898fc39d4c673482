/**
 * The next step of the upgrade of an agent that runs as a container, with
 * the reason an operator sees: decide.ts's counterpart for image installs.
 * Pure: what is desired, what runs, the files under the data dir's
 * `upgrade/`, whether a swap is under way, the failures and the time come in.
 *
 * Order of precedence:
 * 1. nothing desired, or the desired version runs: nothing to do;
 * 2. no image by digest in the section: refused (the hub signs a digest; a tag could change under it);
 * 3. the swap rolled this version back at this revision: held until a newer revision;
 * 4. on trial, or a swap under way: wait for it;
 * 5. failures of this revision: the backoff, then give up after MAX_ATTEMPTS;
 * 6. else: pull the image and start the swap.
 */
import type { DesiredAgent } from '../../shared/index.js';
import { MAX_ATTEMPTS, RETRY_BACKOFF_MS, type UpgradeFailures } from './decide.js';

const DIGEST_REFERENCE = /^[^\s@]+@sha256:[0-9a-f]{64}$/;

export interface ContainerUpgradeSituation {
  desired: DesiredAgent | undefined;
  running: string;
  onTrial: boolean;
  /** A swap container runs, or the swap file names a step before its end. */
  swapping: boolean;
  rolledBack: { version: string; revision: number; reason: string } | undefined;
  failures: UpgradeFailures | undefined;
  now: number;
}

export type ContainerUpgradeDecision =
  | { action: 'none'; reason: string }
  | { action: 'refuse'; reason: string }
  | { action: 'hold'; reason: string }
  | { action: 'wait'; reason: string; at: number }
  | { action: 'swap'; reason: string; image: string };

export function decideContainerUpgrade(s: ContainerUpgradeSituation): ContainerUpgradeDecision {
  const { desired } = s;
  if (desired === undefined) return { action: 'none', reason: 'no agent version is desired' };
  if (desired.version === s.running) return { action: 'none', reason: `agent ${s.running} runs, as desired` };
  const target = `agent ${desired.version} (revision ${desired.revision})`;
  if (desired.image === undefined) {
    return {
      action: 'refuse',
      reason: `the desired ${target} names no image, and this agent runs as a container; set one by digest: flotilla agent upgrade … --image REPO@sha256:…`,
    };
  }
  if (!DIGEST_REFERENCE.test(desired.image)) {
    return {
      action: 'refuse',
      reason: `the desired ${target} names the image "${desired.image}", not one by digest (REPO@sha256:<64 hex>); give --image by digest`,
    };
  }
  const rb = s.rolledBack;
  if (rb && rb.version === desired.version && rb.revision >= desired.revision) {
    return {
      action: 'hold',
      reason: `agent ${rb.version} rolled back at revision ${rb.revision} (${rb.reason}); not tried again until a newer revision asks for it (flotilla agent upgrade --retry)`,
    };
  }
  if (s.onTrial) return { action: 'wait', reason: `agent ${s.running} runs on trial: it confirms before ${target} is tried`, at: s.now };
  if (s.swapping) return { action: 'wait', reason: `a swap of the agent's container is under way`, at: s.now };
  const failed = s.failures;
  if (failed && failed.count >= MAX_ATTEMPTS) {
    return { action: 'refuse', reason: `${failed.message} (gave up after ${failed.count} attempts; a newer revision tries again)` };
  }
  if (failed) {
    const at = failed.lastAt + (RETRY_BACKOFF_MS[failed.count - 1] ?? RETRY_BACKOFF_MS.at(-1) ?? 0);
    if (s.now < at) {
      return {
        action: 'wait',
        reason: `${failed.message} (attempt ${failed.count + 1} of ${MAX_ATTEMPTS} at ${new Date(at).toISOString()})`,
        at,
      };
    }
  }
  return { action: 'swap', reason: `pulling ${desired.image} and swapping the agent's container to ${target}`, image: desired.image };
}

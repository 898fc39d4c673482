/**
 * The container swap's own file, `upgrade/swap` in the agent's data dir: the
 * step it is at and what it needs to finish or undo it, so a swap container
 * restarted after a power cut (or an engine restart) goes on from there.
 *
 * Invariant: a step is written before it is done, and every step can be done
 * again (container-swap.ts), so whatever was cut off is simply redone. The
 * file is `key=value` lines written as device-files.ts writes the launcher's
 * (tmp, fsync, rename, fsync the dir).
 *
 * Beside it, in the same `upgrade/` folder and format as a bundle install's
 * (device-files.ts, under the data dir instead of /opt/flotilla):
 * `upgrade/trial` while the new agent is on trial, `upgrade/rolled-back` once
 * the swap went back.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fsyncDir } from '../fsync-dir.js';
import { ReleasePrefix, readKeyValues, writeKeyValues } from './device-files.js';

export const SWAP_STEPS = ['begin', 'rename', 'stop', 'create', 'start', 'watch', 'confirmed', 'rollback', 'restore', 'done'] as const;
export type SwapStep = (typeof SWAP_STEPS)[number];

/** How a finished swap ended. */
export type SwapOutcome = 'confirmed' | 'rolled-back' | 'failed';

export interface SwapState {
  step: SwapStep;
  /** The agent container's name (`flotilla-agent` on a device); the old one is `<name>-previous` while on trial. */
  container: string;
  /** The new image, by digest. */
  to: string;
  version: string;
  /** The version the old container runs: what a rollback goes back to. */
  fromVersion: string;
  revision: number;
  healthTimeoutSeconds: number;
  maxCrashes: number;
  /** The old container's id, once read ('' before). */
  oldId: string;
  /** The old container's restart policy, given to the new one and back to the old on a rollback. */
  restartPolicy: string;
  restartRetries: number;
  /** Unix seconds: the new agent must confirm by then (0 before it is created). */
  deadline: number;
  /** Why it rolled back or failed. */
  reason: string;
  outcome: SwapOutcome | '';
}

/** The names of the agent container's companions during a swap. */
export function swapNames(container: string): { container: string; previous: string; swap: string } {
  return { container, previous: `${container}-previous`, swap: `${container}-swap` };
}

/** The data dir's `upgrade/` files, laid out as a bundle install's prefix lays them out. */
export function upgradeFiles(dataDir: string): ReleasePrefix {
  return new ReleasePrefix(dataDir);
}

export function swapFile(dataDir: string): string {
  return join(upgradeFiles(dataDir).upgradeDir, 'swap');
}

/** Undefined when there is no swap file or it cannot be read as one (a half-written `.tmp` is never read). */
export function readSwapState(dataDir: string): SwapState | undefined {
  const v = readKeyValues(swapFile(dataDir));
  if (v === undefined) return undefined;
  const step = v.step as SwapStep | undefined;
  if (step === undefined || !SWAP_STEPS.includes(step) || !v.container || !v.to) return undefined;
  const outcome = v.outcome as SwapOutcome | '' | undefined;
  return {
    step,
    container: v.container,
    to: v.to,
    version: v.version ?? '',
    fromVersion: v.fromVersion ?? '',
    revision: Number(v.revision ?? 0),
    healthTimeoutSeconds: Number(v.healthTimeoutSeconds ?? 300),
    maxCrashes: Number(v.maxCrashes ?? 3),
    oldId: v.oldId ?? '',
    restartPolicy: v.restartPolicy || 'always',
    restartRetries: Number(v.restartRetries ?? 0),
    deadline: Number(v.deadline ?? 0),
    reason: v.reason ?? '',
    outcome: outcome === 'confirmed' || outcome === 'rolled-back' || outcome === 'failed' ? outcome : '',
  };
}

export function writeSwapState(dataDir: string, state: SwapState): void {
  mkdirSync(upgradeFiles(dataDir).upgradeDir, { recursive: true });
  writeKeyValues(swapFile(dataDir), { ...state });
}

export function removeSwapState(dataDir: string): void {
  rmSync(swapFile(dataDir), { force: true });
  fsyncDir(upgradeFiles(dataDir).upgradeDir);
}

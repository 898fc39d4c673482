/**
 * The swap of an agent that runs as a container (`install.sh --mode image`)
 * for a new image: what the short-lived swap container (`agent swap`, made by
 * the running agent from its own, known-good image) does, since a container
 * cannot replace itself.
 *
 * Steps, each written to `upgrade/swap` before it is done (swap-state.ts):
 *   begin     read the agent container: its id and restart policy;
 *   rename    `<name>` → `<name>-previous`;
 *   stop      its restart policy to `no` first (an engine restart would start
 *             a stopped `always` container again: two agents), then a graceful
 *             stop (an agent stop never stops app containers);
 *   create    a new `<name>` from the new image with the old one's settings;
 *   start     write `upgrade/trial`, then start it;
 *   watch     until the new agent removes `upgrade/trial` (confirmed), or it
 *             ended MAX times without confirming, or the deadline passed;
 *   confirmed remove `<name>-previous`;
 *   rollback  remove the new container, write `upgrade/rolled-back`, remove the trial;
 *   restore   `<name>-previous` → `<name>`, its restart policy back, start it;
 *   done      the swap container's own restart policy to `no`; it exits 0.
 *
 * Invariants:
 * - At most one agent runs: the old one is stopped before the new one exists,
 *   and the new one is removed before the old one starts again.
 * - Every step can be done again after a power cut (swap-engine.ts is idempotent;
 *   containers are told apart by id), so a restarted swap finishes or undoes
 *   the swap. The swap container's own policy is `unless-stopped`: an engine
 *   that comes back starts it again, and it goes on from its file.
 * - No hub is needed for any of it.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type Dockerode from 'dockerode';
import type { Logger } from 'pino';
import { fsyncDir } from '../fsync-dir.js';
import { writeDurably, writeRolledBack, writeTrial } from './device-files.js';
import type { AgentContainer, SwapEngine } from './swap-engine.js';
import { readSwapState, type SwapOutcome, type SwapState, type SwapStep, swapNames, upgradeFiles, writeSwapState } from './swap-state.js';

export const DEFAULT_MAX_CRASHES = 3;
/** How long the old agent has to stop gracefully (its own stop waits for in-flight work, never for apps). */
const STOP_TIMEOUT_SECONDS = 30;
/** Often enough that a release crashing at start is seldom started again after its last allowed crash. */
const WATCH_INTERVAL_MS = 250;

export interface ContainerSwapOptions {
  engine: SwapEngine;
  /** The agent's data dir, as mounted in the swap container too. */
  dataDir: string;
  logger: Logger;
  /** What to swap to, when no swap file exists yet (a swap started by hand). */
  begin?: Omit<SwapState, 'step' | 'oldId' | 'restartPolicy' | 'restartRetries' | 'deadline' | 'reason' | 'outcome'>;
  now?: () => number;
  watchIntervalMs?: number;
  /**
   * Power-cut tests (FLOTILLA_SWAP_HOLD_AT=rename,stop,…): hold before each of
   * these steps until killed, once per swap; `upgrade/swap-held` records where
   * it held, so the restarted swap goes on.
   */
  holdAt?: readonly string[];
}

export class SwapError extends Error {
  override readonly name = 'SwapError';
}

/** Runs (or resumes) the swap to its end: how it ended. */
export async function runContainerSwap(options: ContainerSwapOptions): Promise<SwapOutcome> {
  const { dataDir, begin } = options;
  let state = readSwapState(dataDir);
  if (state === undefined) {
    if (begin === undefined) throw new SwapError(`no swap under way: ${join(dataDir, 'upgrade/swap')} is missing`);
    state = { ...begin, step: 'begin', oldId: '', restartPolicy: 'always', restartRetries: 0, deadline: 0, reason: '', outcome: '' };
    mkdirSync(upgradeFiles(dataDir).upgradeDir, { recursive: true });
    writeSwapState(dataDir, state);
  }
  const swap = new Swap(options);
  for (;;) {
    options.logger.info({ step: state.step, container: state.container, to: state.to, version: state.version }, 'agent swap step');
    if (state.step === 'done') {
      await swap.finish(state);
      return state.outcome || 'failed';
    }
    await swap.holdIfAsked(state.step);
    const next = await swap.run(state);
    writeSwapState(dataDir, next);
    state = next;
  }
}

class Swap {
  private readonly now: () => number;
  private readonly log: Logger;

  constructor(private readonly o: ContainerSwapOptions) {
    this.now = o.now ?? Date.now;
    this.log = o.logger.child({ component: 'agent-swap' });
  }

  /** One step done; the state of the next (written by the caller before it is done). */
  async run(s: SwapState): Promise<SwapState> {
    const steps: Record<Exclude<SwapStep, 'done'>, (s: SwapState) => Promise<SwapState>> = {
      begin: (s) => this.begin(s),
      rename: (s) => this.rename(s),
      stop: (s) => this.stop(s),
      create: (s) => this.create(s),
      start: (s) => this.start(s),
      watch: (s) => this.watch(s),
      confirmed: (s) => this.confirmed(s),
      rollback: (s) => this.rollback(s),
      restore: (s) => this.restore(s),
    };
    return steps[s.step as Exclude<SwapStep, 'done'>](s);
  }

  private async begin(s: SwapState): Promise<SwapState> {
    const old = await this.o.engine.inspect(s.container);
    if (old === undefined) return failed(s, `there is no container named ${s.container} to swap`);
    return {
      ...s,
      step: 'rename',
      oldId: old.id,
      restartPolicy: old.restartPolicy.Name,
      restartRetries: old.restartPolicy.MaximumRetryCount ?? 0,
    };
  }

  private async rename(s: SwapState): Promise<SwapState> {
    const { previous } = swapNames(s.container);
    const current = await this.o.engine.inspect(s.container);
    if (current?.id === s.oldId) {
      // A `-previous` left by an earlier swap that never finished is not the one to keep.
      const stale = await this.o.engine.inspect(previous);
      if (stale && stale.id !== s.oldId) await this.o.engine.remove(stale.id);
      await this.o.engine.rename(s.oldId, previous);
    } else if ((await this.o.engine.inspect(previous))?.id !== s.oldId) {
      return failed(s, `the agent container ${s.container} (${s.oldId.slice(0, 12)}) is gone`);
    }
    return { ...s, step: 'stop' };
  }

  private async stop(s: SwapState): Promise<SwapState> {
    await this.o.engine.setRestartPolicy(s.oldId, { Name: 'no' });
    await this.o.engine.stop(s.oldId, STOP_TIMEOUT_SECONDS);
    return { ...s, step: 'create' };
  }

  private async create(s: SwapState): Promise<SwapState> {
    const { engine } = this.o;
    const half = await engine.inspect(s.container);
    if (half && half.id !== s.oldId) await engine.remove(half.id);
    const old = await engine.inspect(s.oldId);
    if (old === undefined) return failed(s, `the previous agent container ${s.oldId.slice(0, 12)} is gone`);
    const options = newContainerOptions(old, await engine.imageConfig(old.imageId), s);
    try {
      await engine.create(s.container, options);
    } catch (err) {
      return { ...s, step: 'rollback', reason: `could not create the new agent's container: ${(err as Error).message}` };
    }
    return { ...s, step: 'start', deadline: Math.ceil(this.now() / 1000) + s.healthTimeoutSeconds };
  }

  /** The trial file first: a new agent that starts finds itself on trial. */
  private async start(s: SwapState): Promise<SwapState> {
    writeTrial(upgradeFiles(this.o.dataDir), {
      version: s.version,
      previous: s.fromVersion,
      revision: s.revision,
      deadline: s.deadline,
      starts: 0,
    });
    return { ...s, step: 'watch' };
  }

  private async watch(s: SwapState): Promise<SwapState> {
    const trial = upgradeFiles(this.o.dataDir).trialFile;
    for (;;) {
      if (!existsSync(trial)) return { ...s, step: 'confirmed' };
      const current = await this.o.engine.inspect(s.container);
      if (current === undefined || current.id === s.oldId) return { ...s, step: 'rollback', reason: "the new agent's container is gone" };
      if (!current.everStarted && !current.running) {
        try {
          await this.o.engine.start(current.id);
        } catch (err) {
          return { ...s, step: 'rollback', reason: `could not start the new agent: ${(err as Error).message}` };
        }
        this.log.info({ container: s.container, version: s.version }, 'started the new agent on trial');
        continue;
      }
      const ended = endedStarts(current);
      if (ended >= s.maxCrashes) return { ...s, step: 'rollback', reason: `crashed ${s.maxCrashes} times in a row` };
      if (this.now() / 1000 >= s.deadline) return { ...s, step: 'rollback', reason: 'did not report healthy within the health timeout' };
      await new Promise((resolve) => setTimeout(resolve, this.o.watchIntervalMs ?? WATCH_INTERVAL_MS));
    }
  }

  private async confirmed(s: SwapState): Promise<SwapState> {
    await this.o.engine.remove(s.oldId);
    this.log.info({ version: s.version, previous: s.fromVersion }, 'the new agent confirmed: the previous container is removed');
    return { ...s, step: 'done', outcome: 'confirmed' };
  }

  /** The new container goes before the rolled-back file is written: only the old agent, started after, reports it. */
  private async rollback(s: SwapState): Promise<SwapState> {
    const current = await this.o.engine.inspect(s.container);
    if (current && current.id !== s.oldId) await this.o.engine.remove(current.id);
    const files = upgradeFiles(this.o.dataDir);
    writeRolledBack(files, {
      version: s.version,
      revision: s.revision,
      reason: s.reason,
      at: Math.floor(this.now() / 1000),
      reported: false,
    });
    rmSync(files.trialFile, { force: true });
    fsyncDir(files.upgradeDir);
    this.log.warn({ version: s.version, previous: s.fromVersion, reason: s.reason }, 'rolling the agent back');
    return { ...s, step: 'restore' };
  }

  private async restore(s: SwapState): Promise<SwapState> {
    const { engine } = this.o;
    const old = await engine.inspect(s.oldId);
    if (old === undefined) {
      this.log.error({ oldId: s.oldId }, 'the previous agent container is gone: nothing to go back to');
      return { ...s, step: 'done', outcome: 'failed', reason: `${s.reason}; and the previous agent container is gone` };
    }
    if (old.name !== s.container) {
      const other = await engine.inspect(s.container);
      if (other && other.id !== s.oldId) await engine.remove(other.id);
      await engine.rename(s.oldId, s.container);
    }
    await engine.setRestartPolicy(s.oldId, { Name: s.restartPolicy, MaximumRetryCount: s.restartRetries });
    await engine.start(s.oldId);
    return { ...s, step: 'done', outcome: 'rolled-back' };
  }

  /** Ends the swap container's restarts: from here an exit is final, and the agent removes it. */
  async finish(s: SwapState): Promise<void> {
    const self = await this.o.engine.inspect(swapNames(s.container).swap);
    if (self) await this.o.engine.setRestartPolicy(self.id, { Name: 'no' });
    this.log.info({ outcome: s.outcome, version: s.version, reason: s.reason || undefined }, 'agent swap finished');
  }

  async holdIfAsked(step: SwapStep): Promise<void> {
    if (!(this.o.holdAt ?? []).includes(step)) return;
    const marker = heldMarker(this.o.dataDir);
    let held: string[] = [];
    try {
      held = readFileSync(marker, 'utf8').split('\n').filter(Boolean);
    } catch {
      // none held yet in this swap
    }
    if (held.includes(step)) return;
    writeDurably(marker, [...held, step].map((s) => `${s}\n`).join(''));
    this.log.warn({ step }, 'holding before this step until killed (FLOTILLA_SWAP_HOLD_AT)');
    // A timer keeps the process alive: a bare pending promise would let Node exit.
    await new Promise(() => setInterval(() => undefined, 60_000));
  }
}

/** Power-cut tests: the steps a swap held at so far, one a line (start-swap.ts removes it for each new swap). */
export function heldMarker(dataDir: string): string {
  return join(upgradeFiles(dataDir).upgradeDir, 'swap-held');
}

function failed(s: SwapState, reason: string): SwapState {
  return { ...s, step: 'done', outcome: 'failed', reason };
}

/**
 * Starts of the new container that ended: each restart by its policy followed
 * an exit, and a container not running now has ended once more.
 */
export function endedStarts(c: AgentContainer): number {
  return c.restartCount + (c.running ? 0 : 1);
}

/**
 * The new container: the old one's own settings (what differs from its
 * image's defaults: env, command, entrypoint, user, labels) and its whole host
 * config (mounts, network mode, group-add, devices…), on the new image, so
 * the new image's own defaults apply where the install did not override them.
 */
export function newContainerOptions(
  old: AgentContainer,
  oldImage: Dockerode.ImageInspectInfo['Config'] | undefined,
  s: Pick<SwapState, 'to' | 'restartPolicy' | 'restartRetries'>,
): Dockerode.ContainerCreateOptions {
  const config = old.raw.Config;
  const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
  const imageEnv = new Set(oldImage?.Env ?? []);
  const imageLabels = oldImage?.Labels ?? {};
  return {
    Image: s.to,
    Env: (config.Env ?? []).filter((entry) => !imageEnv.has(entry)),
    ...(same(config.Cmd, oldImage?.Cmd) ? {} : { Cmd: config.Cmd as string[] }),
    ...(same(config.Entrypoint, oldImage?.Entrypoint) ? {} : { Entrypoint: config.Entrypoint as string[] }),
    ...(config.User !== (oldImage?.User ?? '') ? { User: config.User } : {}),
    ...(config.WorkingDir !== (oldImage?.WorkingDir ?? '') ? { WorkingDir: config.WorkingDir } : {}),
    Labels: Object.fromEntries(Object.entries(config.Labels ?? {}).filter(([key, value]) => imageLabels[key] !== value)),
    HostConfig: {
      ...(old.raw.HostConfig as Dockerode.HostConfig),
      RestartPolicy: { Name: s.restartPolicy, MaximumRetryCount: s.restartRetries },
    },
  };
}

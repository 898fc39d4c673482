/**
 * The own upgrade of an agent that runs as a container (`install.sh --mode
 * image`, which names the container in FLOTILLA_AGENT_CONTAINER): upgrader.ts's
 * counterpart, with the same face to the agent (`report`, `changed`,
 * `setDesired`, `stateAcknowledged`). It pulls the desired image by digest
 * (the engine checks the digest) and starts the swap container
 * (start-swap.ts), which stops this agent and starts the new one on trial.
 *
 * Its files are a bundle install's, under the data dir instead of the release
 * prefix: `upgrade/trial` (written by the swap; this agent, when it is the new
 * one, removes it once the hub acknowledged a state report) and
 * `upgrade/rolled-back` (written by the swap when it went back; this agent,
 * when it is the old one started again, reports it once).
 *
 * Invariants: one pass at a time; nothing here throws into the agent (a
 * failure is a `failed` report and an `agent-upgrade-failed` event, tried again
 * after a backoff up to MAX_ATTEMPTS per revision); the finished swap
 * container and its file are removed by whichever agent runs after it.
 */
import { rmSync } from 'node:fs';
import type { Logger } from 'pino';
import type { AgentUpgradeReport, DesiredAgent } from '../../shared/index.js';
import type { Signal } from '../../shared/signal.js';
import { fsyncDir } from '../fsync-dir.js';
import { enginePulls, type ImageSource } from '../images/image-source.js';
import type { ContainerRuntime } from '../runtime/runtime.js';
import type { NewEvent } from '../wiring/uplink.js';
import { decideContainerUpgrade } from './container-decide.js';
import type { UpgradeFailures } from './decide.js';
import { readRolledBack, readTrial, writeRolledBack } from './device-files.js';
import { confirmingReport, type ReportContent, UpgradeReport, upgradeEvents } from './report.js';
import { startContainerSwap } from './start-swap.js';
import type { SwapEngine } from './swap-engine.js';
import { readSwapState, removeSwapState, swapNames, upgradeFiles } from './swap-state.js';

const CLEANUP_INTERVAL_MS = 2_000;
const ENGINE_PULL_REASON = "the agent's new image is created by its digest, which the engine knows only from its own pull";
/** How long a finished swap container is waited for to exit before it is left for the next start. */
const CLEANUP_ATTEMPTS = 60;

export interface ContainerUpgraderDeps {
  /** The agent container's name (FLOTILLA_AGENT_CONTAINER). */
  container: string;
  dataDir: string;
  /** The version this agent runs. */
  running: string;
  runtime: Pick<ContainerRuntime, 'pull'>;
  /** Where the new image comes from (image-puller.ts); default the runtime's pull. */
  images?: ImageSource;
  engine: SwapEngine;
  logger: Logger;
  event(event: NewEvent): void;
  now?: () => number;
  cleanupIntervalMs?: number;
}

export class ContainerUpgrader {
  readonly changed: Signal<void>;
  private desired: DesiredAgent | undefined;
  private readonly reported: UpgradeReport;
  private failures: UpgradeFailures | undefined;
  private lastRefusal: string | undefined;
  private onTrial = false;
  private swapStarted = false;
  private running: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private cleanupTimer: NodeJS.Timeout | undefined;
  private swapEndTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(private readonly deps: ContainerUpgraderDeps) {
    this.log = deps.logger.child({ component: 'agent-upgrade', container: deps.container });
    this.now = deps.now ?? Date.now;
    this.reported = new UpgradeReport(this.now, (err) => this.log.error({ err }, 'reporting the agent upgrade failed'));
    this.changed = this.reported.changed;
  }

  get report(): AgentUpgradeReport | undefined {
    return this.reported.current;
  }

  /** At the agent's start: a rollback is told once, a trial is noted, a finished swap is cleared away. */
  start(): void {
    const files = upgradeFiles(this.deps.dataDir);
    try {
      const rolledBack = readRolledBack(files);
      if (rolledBack && !rolledBack.reported) {
        this.deps.event({
          type: 'agent-rolled-back',
          message: `agent ${rolledBack.version} (revision ${rolledBack.revision}) rolled back to ${this.deps.running}: ${rolledBack.reason}`,
        });
        writeRolledBack(files, { ...rolledBack, reported: true });
        this.log.warn(
          { version: rolledBack.version, revision: rolledBack.revision, reason: rolledBack.reason },
          'the swap rolled this agent back',
        );
      }
      const trial = readTrial(files);
      if (trial && trial.version === this.deps.running) {
        this.onTrial = true;
        this.setReport(confirmingReport(trial));
        this.log.info(
          { version: trial.version, previous: trial.previous },
          'running on trial: confirming once the hub acknowledges a state report',
        );
      } else if (trial && readSwapState(this.deps.dataDir)?.step === 'watch') {
        // The image runs another version than the section named: it never confirms, and the swap goes back at its deadline.
        this.log.error(
          { trialVersion: trial.version, running: this.deps.running },
          'this image runs another version than the upgrade named: not confirming; the swap rolls back at its deadline',
        );
      }
    } catch (err) {
      this.log.error({ err: (err as Error).message, dataDir: this.deps.dataDir }, 'reading the upgrade files at start failed');
    }
    this.cleanUpSwap(CLEANUP_ATTEMPTS);
  }

  setDesired(agent: DesiredAgent | undefined): void {
    if (this.closed) return;
    if (agent && this.desired && agent.revision < this.desired.revision) return;
    if (agent?.revision !== this.desired?.revision) {
      this.failures = undefined;
      this.lastRefusal = undefined;
    }
    this.desired = agent;
    this.schedule();
  }

  /** The hub acknowledged a state report: a version on trial is healthy, and confirms. */
  stateAcknowledged(): void {
    if (!this.onTrial || this.closed) return;
    this.onTrial = false;
    const files = upgradeFiles(this.deps.dataDir);
    const trial = readTrial(files);
    try {
      rmSync(files.trialFile, { force: true });
      fsyncDir(files.upgradeDir);
      this.deps.event({
        type: 'agent-upgraded',
        message: `agent upgraded from ${trial?.previous ?? 'the previous version'} to ${this.deps.running}`,
      });
      this.log.info({ version: this.deps.running, previous: trial?.previous }, 'agent upgrade confirmed');
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'confirming the trial failed: the swap rolls back at its deadline');
    }
    this.setReport(undefined);
    this.cleanUpSwap(CLEANUP_ATTEMPTS);
    this.schedule();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    clearTimeout(this.cleanupTimer);
    clearTimeout(this.swapEndTimer);
    await this.running;
  }

  private schedule(): void {
    clearTimeout(this.timer);
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.pass()
      .catch((err: Error) => this.log.error({ err: err.message }, 'agent upgrade pass failed'))
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.schedule();
        }
      });
  }

  private async pass(): Promise<void> {
    const desired = this.desired;
    const swapState = readSwapState(this.deps.dataDir);
    const decision = decideContainerUpgrade({
      desired,
      running: this.deps.running,
      onTrial: this.onTrial,
      swapping: this.swapStarted || (swapState !== undefined && swapState.step !== 'done'),
      rolledBack: readRolledBack(upgradeFiles(this.deps.dataDir)),
      failures: this.failures?.revision === desired?.revision ? this.failures : undefined,
      now: this.now(),
    });
    this.log.debug({ decision }, 'agent upgrade step');
    switch (decision.action) {
      case 'none':
        if (!this.onTrial) this.setReport(undefined);
        return;
      case 'refuse':
        if (desired) this.refused(desired, decision.reason);
        return;
      case 'hold':
        if (desired)
          this.setReport({ version: desired.version, revision: desired.revision, phase: 'rolled-back', message: decision.reason });
        return;
      case 'wait':
        if (decision.at > this.now()) this.timer = setTimeout(() => this.schedule(), decision.at - this.now()).unref();
        return;
      case 'swap':
        if (desired) await this.swap({ ...desired, image: decision.image });
        return;
    }
  }

  private async swap(desired: DesiredAgent & { image: string }): Promise<void> {
    const { version, revision, image } = desired;
    try {
      this.deps.event({
        type: 'agent-upgrade-started',
        message: `upgrading the agent from ${this.deps.running} to ${version} (revision ${revision}): pulling ${image}`,
      });
      this.setReport({ version, revision, phase: 'downloading', message: `pulling ${image}` });
      // The engine's pull: the swap container (agent swap, its own engine client) creates the new
      // agent from this reference by digest, which the engine knows only from a pull of its own
      // (an image the agent loads carries no digest reference). The engine checks the digest.
      const images = this.deps.images ?? enginePulls(this.deps.runtime);
      await images.pull({ image, owner: {}, via: 'engine', why: ENGINE_PULL_REASON, signal: new AbortController().signal });
      this.deps.event({ type: 'agent-upgrade-downloaded', message: `agent ${version} pulled (${image}); the engine verified its digest` });
      if (this.closed || this.desired?.revision !== revision) return;
      this.setReport({ version, revision, phase: 'switching', message: `starting ${swapNames(this.deps.container).swap}` });
      this.swapStarted = true;
      await startContainerSwap(this.deps.engine, desired, {
        container: this.deps.container,
        dataDir: this.deps.dataDir,
        fromVersion: this.deps.running,
      });
      this.deps.event({
        type: 'agent-upgrade-restarting',
        message: `agent ${this.deps.running} hands over to ${version}: the swap container stops it and starts the new one on trial`,
      });
      this.setReport({ version, revision, phase: 'restarting' });
      this.log.info({ version, image }, 'swap container started: it stops this agent and starts the new one');
      // The swap stops this agent; should it end without doing so (nothing to swap), say why.
      this.watchSwapEnd(desired);
    } catch (err) {
      this.swapStarted = false;
      this.failed(desired, (err as Error).message);
    }
  }

  /** While this agent still runs after starting a swap: a swap that ended without stopping it failed. */
  private watchSwapEnd(desired: DesiredAgent): void {
    this.swapEndTimer = setTimeout(() => {
      if (this.closed) return;
      const state = readSwapState(this.deps.dataDir);
      if (state?.step === 'done') {
        this.swapStarted = false;
        if (state.outcome === 'failed') this.failed(desired, `the swap failed: ${state.reason}`);
        this.cleanUpSwap(CLEANUP_ATTEMPTS);
        return;
      }
      this.watchSwapEnd(desired);
    }, this.deps.cleanupIntervalMs ?? CLEANUP_INTERVAL_MS).unref();
  }

  /** A finished swap's container and file go once it has exited; one still at work is waited for, a while. */
  private cleanUpSwap(attempts: number): void {
    if (this.closed) return;
    const state = readSwapState(this.deps.dataDir);
    if (state === undefined) return;
    const later = () => {
      if (attempts > 1) {
        this.cleanupTimer = setTimeout(() => this.cleanUpSwap(attempts - 1), this.deps.cleanupIntervalMs ?? CLEANUP_INTERVAL_MS).unref();
      }
    };
    if (state.step !== 'done') {
      later();
      return;
    }
    const name = swapNames(this.deps.container).swap;
    void this.deps.engine
      .inspect(name)
      .then(async (swap) => {
        if (swap?.running) {
          later();
          return;
        }
        if (swap) await this.deps.engine.remove(swap.id);
        removeSwapState(this.deps.dataDir);
        this.log.info({ swap: name, outcome: state.outcome }, 'removed the finished swap container');
      })
      .catch((err: Error) => this.log.warn({ err: err.message, swap: name }, 'removing the finished swap container failed'));
  }

  private failed(desired: DesiredAgent, message: string): void {
    const before = this.failures?.revision === desired.revision ? this.failures.count : 0;
    this.failures = { version: desired.version, revision: desired.revision, count: before + 1, lastAt: this.now(), message };
    this.deps.event(upgradeEvents.failed(desired, message));
    this.setReport({ version: desired.version, revision: desired.revision, phase: 'failed', message });
    this.log.warn({ version: desired.version, revision: desired.revision, attempt: before + 1, err: message }, 'agent upgrade failed');
    this.schedule();
  }

  private refused(desired: DesiredAgent, reason: string): void {
    this.setReport({ version: desired.version, revision: desired.revision, phase: 'failed', message: reason });
    const key = `${desired.revision}|${reason}`;
    if (this.lastRefusal === key) return;
    this.lastRefusal = key;
    if (!reason.includes('gave up after')) {
      this.deps.event(upgradeEvents.failed(desired, reason));
    }
    this.log.warn({ version: desired.version, revision: desired.revision, reason }, 'agent upgrade refused');
  }

  private setReport(report: ReportContent | undefined): void {
    this.reported.set(report);
  }
}

/**
 * The agent's own upgrade, run: observes the prefix, asks decide.ts for the
 * next step, runs it, and again, until nothing is left to do; reports where it
 * stands (`report`, which the state report carries, and `changed`) and every
 * step as a device event through the outbox.
 *
 * Invariants:
 * - One pass at a time. A desired section for another file (version, URL or
 *   checksum) aborts the pass under way, whose abort is "abandoned", not a
 *   failure; one for the same file under a newer revision lets it go on.
 * - Nothing here throws into the agent: every failure becomes a `failed`
 *   report and an `agent-upgrade-failed` event, retried after a backoff
 *   (decide.ts) until MAX_ATTEMPTS for that revision.
 * - Downloads and checksums stream; the only synchronous work is small file
 *   writes and renames.
 * - After the switch the agent stops gracefully (`restart`: app containers
 *   keep running) and the launcher starts the new release on trial.
 */
import { existsSync, lstatSync, readdirSync, rmSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { AgentUpgradeReport, DesiredAgent } from '../../shared/index.js';
import { parseDuration } from '../../shared/schemas/units.js';
import type { Signal } from '../../shared/signal.js';
import { abortableSleep } from '../abortable-sleep.js';
import { freeBytes } from '../runtime/disk.js';
import type { NewEvent } from '../wiring/uplink.js';
import { decideUpgrade, type RefusalKind, type UpgradeDecision, type UpgradeFailures } from './decide.js';
import { ReleasePrefix, readRolledBack, readTrial, releaseSha256, writeRolledBack } from './device-files.js';
import { DownloadError, download } from './download.js';
import { unpackRelease, verifyTarball } from './install.js';
import { confirmingReport, UpgradeReport, upgradeEvents } from './report.js';
import { confirmTrial, removeOldReleases, switchTo } from './switch.js';

const DEFAULT_HEALTH_TIMEOUT_MS = 5 * 60_000;
const PROGRESS_INTERVAL_MS = 5_000;
/** How long a new desired release waits for a newer one before it is acted on (setDesired). */
const DESIRED_SETTLE_MS = 1_000;
/** Reconnects in a row that bring no byte before a download counts as failed. */
const DOWNLOAD_RECONNECTS = 5;

export interface UpgraderDeps {
  /** FLOTILLA_RELEASES_DIR: set by the launcher; undefined when the agent was started otherwise. */
  releasesDir: string | undefined;
  /** The version this agent runs. */
  running: string;
  /** Where a bundle URL given as a path is resolved (agent/upgrade/hub-http-url.ts). */
  hubHttpUrl: string;
  /** The pinned CA for an https hub. */
  ca?: string | undefined;
  logger: Logger;
  event(event: NewEvent): void;
  /** The agent's graceful stop, then exit 0 (systemd starts the launcher again). */
  restart(): void;
  now?: () => number;
  freeBytes?: (path: string) => Promise<number>;
  progressIntervalMs?: number;
}

interface Work {
  key: string;
  controller: AbortController;
  done: Promise<void>;
}

export class AgentUpgrader {
  private desired: DesiredAgent | undefined;
  private readonly reported: UpgradeReport;
  private failures: UpgradeFailures | undefined;
  private work: Work | undefined;
  private again = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private lastRefusal: string | undefined;
  private startedKey: string | undefined;
  private readonly prefix: ReleasePrefix | undefined;
  private onTrial = false;
  /** Stale staging dirs and older releases removed (start(), confirmation): a pass waits for it. */
  private cleaned: Promise<void> = Promise.resolve();
  private restarting = false;
  private closed = false;
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(private readonly deps: UpgraderDeps) {
    this.log = deps.logger.child({ component: 'agent-upgrade' });
    this.now = deps.now ?? Date.now;
    this.reported = new UpgradeReport(this.now, (err) => this.log.error({ err }, 'reporting the agent upgrade failed'));
    this.prefix = launcherPrefix(deps.releasesDir);
  }

  /** Where the upgrade stands, for the state report; undefined when there is nothing to say. */
  get report(): AgentUpgradeReport | undefined {
    return this.reported.current;
  }

  /** Emitted when `report` changes: the state report carries it. */
  get changed(): Signal<void> {
    return this.reported.changed;
  }

  /**
   * At the agent's start: stale staging dirs go, a rollback is told once (and the releases
   * `current` and `previous` do not name go, the rolled-back one among them), a trial is noted.
   */
  start(): void {
    const prefix = this.prefix;
    if (prefix === undefined) return;
    try {
      // A release half unpacked or half removed when the agent stopped: tens of MB of files,
      // removed in the background, and before any pass may unpack into a staging dir of the same name.
      const stale = readdirSync(prefix.dir).filter((entry) => entry.startsWith('.staging-') || entry.startsWith('.removing-'));
      this.cleaned = Promise.all(
        stale.map((entry) =>
          rm(join(prefix.dir, entry), { recursive: true, force: true }).catch((err: Error) =>
            this.log.warn({ err: err.message, dir: entry }, 'removing a stale staging or removal dir failed'),
          ),
        ),
      ).then(() => {});
      const rolledBack = readRolledBack(prefix);
      if (rolledBack && !rolledBack.reported) {
        this.deps.event(upgradeEvents.rolledBack(rolledBack, this.deps.running));
        writeRolledBack(prefix, { ...rolledBack, reported: true });
        this.log.warn(
          { version: rolledBack.version, revision: rolledBack.revision, reason: rolledBack.reason },
          'the launcher rolled this agent back',
        );
        // The rolled-back release would otherwise sit on the disk the next upgrade's check needs.
        this.removeOldReleases(prefix);
      }
      const trial = readTrial(prefix);
      if (trial && trial.version === this.deps.running) {
        this.onTrial = true;
        this.reported.set(confirmingReport(trial));
        this.log.info(
          { version: trial.version, previous: trial.previous },
          'running on trial: confirming once the hub acknowledges a state report',
        );
      }
    } catch (err) {
      this.log.error({ err: (err as Error).message, prefix: prefix.dir }, 'reading the release prefix at start failed');
    }
  }

  /** The desired document's agent section (undefined: none), each time one is accepted. */
  setDesired(agent: DesiredAgent | undefined): void {
    if (this.closed || this.restarting) return;
    const before = this.desired;
    this.desired = agent;
    if (agent?.revision !== before?.revision) {
      this.failures = undefined;
      this.lastRefusal = undefined;
    }
    if (this.work && this.work.key !== fileKey(agent)) {
      this.log.info({ abandoned: this.work.key, desired: agent?.version }, 'a new desired agent section: abandoning the upgrade under way');
      this.work.controller.abort();
    }
    // A device back from offline gets what its MQTT session queued, oldest first and back to
    // back: a new release is acted on once no newer section has followed it for a moment, so a
    // device that missed several upgrades starts only the newest.
    if (fileKey(agent) !== fileKey(before)) this.scheduleAt(this.now() + DESIRED_SETTLE_MS);
    else this.schedule();
  }

  /** The hub acknowledged a state report: a version on trial is healthy, and confirms. */
  stateAcknowledged(): void {
    const prefix = this.prefix;
    if (!this.onTrial || prefix === undefined || this.closed) return;
    this.onTrial = false;
    const trial = readTrial(prefix);
    try {
      const launcherReplaced = confirmTrial(prefix);
      this.deps.event(upgradeEvents.upgraded(trial?.previous, this.deps.running));
      this.log.info({ version: this.deps.running, previous: trial?.previous, launcherReplaced }, 'agent upgrade confirmed');
      this.removeOldReleases(prefix);
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'confirming the trial failed: the launcher will roll back at its deadline');
    }
    this.reported.set(undefined);
    this.schedule();
  }

  /**
   * The releases no link names go in the background (tens of MB of small files would hold the
   * event loop); the next pass waits for it, so it never unpacks a folder this is removing.
   */
  private removeOldReleases(prefix: ReleasePrefix): void {
    this.cleaned = this.cleaned
      .then(() => removeOldReleases(prefix))
      .then(
        (removed) => {
          if (removed.length > 0) this.log.info({ removed }, 'older agent releases removed');
        },
        (err: Error) => this.log.warn({ err: err.message }, 'removing older agent releases failed'),
      );
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.work?.controller.abort();
    await this.work?.done;
  }

  private schedule(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.closed || this.restarting) return;
    if (this.work) {
      this.again = true;
      return;
    }
    const controller = new AbortController();
    const key = fileKey(this.desired);
    const done = this.pass(controller.signal).finally(() => {
      this.work = undefined;
      if (this.again) {
        this.again = false;
        this.schedule();
      }
    });
    this.work = { key, controller, done };
  }

  /** Another pass at `at` (ms), unless something schedules one sooner. */
  private scheduleAt(at: number): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.schedule(), Math.max(0, at - this.now()));
    this.retryTimer.unref();
  }

  /** Decide, act, and again, until a decision leaves nothing to do now. */
  private async pass(signal: AbortSignal): Promise<void> {
    const desired = this.desired;
    try {
      await this.cleaned;
      this.dropOtherDownloads(desired);
      for (;;) {
        signal.throwIfAborted();
        const decision = decideUpgrade(await this.observe(desired));
        this.log.debug({ decision }, 'agent upgrade step');
        if (!(await this.act(decision, desired, signal))) return;
      }
    } catch (err) {
      if (signal.aborted) {
        this.log.info({ version: desired?.version }, 'agent upgrade abandoned');
        return;
      }
      this.failed(desired, (err as Error).message);
    }
  }

  /** Runs one decision; true when the pass goes on to decide again. */
  private async act(decision: UpgradeDecision, desired: DesiredAgent | undefined, signal: AbortSignal): Promise<boolean> {
    switch (decision.action) {
      case 'none':
        this.failures = undefined;
        if (!this.onTrial) this.reported.set(undefined);
        return false;
      case 'refuse':
        if (desired) this.refused(desired, decision.kind, decision.reason);
        if (decision.recheckAt !== undefined) this.scheduleAt(decision.recheckAt);
        return false;
      case 'hold':
        if (desired)
          this.reported.set({ version: desired.version, revision: desired.revision, phase: 'rolled-back', message: decision.reason });
        return false;
      case 'wait':
        if (decision.at > this.now()) this.scheduleAt(decision.at);
        return false;
      case 'download':
        if (desired) await this.download(desired, decision.from, signal);
        return true;
      case 'install':
        if (desired) await this.install(desired, signal);
        return true;
      case 'switch':
        if (desired) this.switchAndRestart(desired);
        return false;
    }
  }

  private async observe(desired: DesiredAgent | undefined) {
    const prefix = this.prefix;
    const { installed, otherBuild } = unpackedRelease(prefix, desired);
    const part = prefix && desired?.bundle ? prefix.part(partName(desired)) : undefined;
    const partBytes = part === undefined ? 0 : (statSync(part, { throwIfNoEntry: false })?.size ?? 0);
    const rolledBack = prefix ? readRolledBack(prefix) : undefined;
    const measure = this.deps.freeBytes ?? freeBytes;
    return {
      desired,
      running: this.deps.running,
      prefix: prefix?.dir,
      onTrial: this.onTrial,
      rolledBack,
      failures: this.failures?.revision === desired?.revision ? this.failures : undefined,
      installed,
      otherBuild,
      partBytes,
      freeBytes: prefix && desired && !installed ? await measure(prefix.dir) : Number.MAX_SAFE_INTEGER,
      now: this.now(),
    };
  }

  private async download(desired: DesiredAgent, from: number, signal: AbortSignal): Promise<void> {
    const prefix = this.prefix as ReleasePrefix;
    const bundle = desired.bundle as NonNullable<DesiredAgent['bundle']>;
    const url = new URL(bundle.url, `${this.deps.hubHttpUrl.replace(/\/+$/, '')}/`);
    const key = `${fileKey(desired)}|${desired.revision}`;
    if (this.startedKey !== key) {
      this.startedKey = key;
      this.deps.event(upgradeEvents.started(this.deps.running, desired, bundle.bytes, from));
    }
    this.log.info(
      { version: desired.version, url: url.href, from, total: bundle.bytes },
      from > 0 ? 'resuming the agent download' : 'downloading the agent',
    );
    const progress = (bytes: number) =>
      this.reported.set(
        { version: desired.version, revision: desired.revision, phase: 'downloading', bytes, total: bundle.bytes },
        { tell: false },
      );
    progress(from);
    this.reported.tell();
    const interval = setInterval(() => this.reported.tell(), this.deps.progressIntervalMs ?? PROGRESS_INTERVAL_MS);
    const part = prefix.part(partName(desired));
    try {
      // A connection lost mid-file is the link's fault, not the release's: resume at once, backing
      // off only while no byte gets through, before it counts as a failed attempt.
      for (let stalled = 0, offset = from; ; ) {
        try {
          const result = await download({ url, part, from: offset, total: bundle.bytes, ca: this.deps.ca, signal, onProgress: progress });
          this.log.info(
            { version: desired.version, bytes: result.bytes, received: result.received, resumed: result.resumed },
            'agent download ended',
          );
          return;
        } catch (err) {
          if (signal.aborted || !(err instanceof DownloadError)) throw err;
          const now = statSync(part, { throwIfNoEntry: false })?.size ?? 0;
          stalled = now > offset ? 0 : stalled + 1;
          if (stalled >= DOWNLOAD_RECONNECTS) throw err;
          this.log.warn(
            { version: desired.version, bytes: now, total: bundle.bytes, err: err.message },
            'agent download interrupted: resuming',
          );
          await abortableSleep(stalled === 0 ? 200 : Math.min(1000 * 2 ** (stalled - 1), 15_000), signal);
          offset = now > bundle.bytes ? 0 : now;
        }
      }
    } finally {
      clearInterval(interval);
    }
  }

  private async install(desired: DesiredAgent, signal: AbortSignal): Promise<void> {
    const prefix = this.prefix as ReleasePrefix;
    const bundle = desired.bundle as NonNullable<DesiredAgent['bundle']>;
    const part = prefix.part(partName(desired));
    this.reported.set({
      version: desired.version,
      revision: desired.revision,
      phase: 'verifying',
      bytes: bundle.bytes,
      total: bundle.bytes,
    });
    await verifyTarball(part, desired.version, bundle.sha256, signal);
    this.deps.event(upgradeEvents.downloaded(desired, bundle.bytes));
    await unpackRelease(prefix, part, desired.version, bundle.sha256, signal);
    this.log.info({ version: desired.version, dir: prefix.release(desired.version) }, 'agent release unpacked and smoke-tested');
  }

  private switchAndRestart(desired: DesiredAgent): void {
    const prefix = this.prefix as ReleasePrefix;
    const healthTimeoutMs = desired.healthTimeout !== undefined ? parseDuration(desired.healthTimeout) : DEFAULT_HEALTH_TIMEOUT_MS;
    this.reported.set({ version: desired.version, revision: desired.revision, phase: 'switching' });
    switchTo(prefix, { version: desired.version, revision: desired.revision, healthTimeoutMs }, this.deps.running, this.now());
    this.restarting = true;
    this.deps.event(upgradeEvents.restarting(this.deps.running, desired, healthTimeoutMs));
    this.reported.set({ version: desired.version, revision: desired.revision, phase: 'restarting' });
    this.log.info({ version: desired.version, previous: this.deps.running }, 'switched to the new agent release: restarting into it');
    this.deps.restart();
  }

  private failed(desired: DesiredAgent | undefined, message: string): void {
    if (!desired) {
      this.log.error({ err: message }, 'agent upgrade failed');
      return;
    }
    const before = this.failures?.revision === desired.revision ? this.failures.count : 0;
    this.failures = { version: desired.version, revision: desired.revision, count: before + 1, lastAt: this.now(), message };
    this.deps.event(upgradeEvents.failed(desired, message));
    this.reported.set({ version: desired.version, revision: desired.revision, phase: 'failed', message });
    this.log.warn({ version: desired.version, revision: desired.revision, attempt: before + 1, err: message }, 'agent upgrade failed');
    this.schedule();
  }

  /** A refusal is told once per revision and kind (the last failure told already why it gave up), and stays in the report. */
  private refused(desired: DesiredAgent, kind: RefusalKind, reason: string): void {
    this.reported.set({ version: desired.version, revision: desired.revision, phase: 'failed', message: reason });
    const key = `${desired.revision}|${kind}`;
    if (this.lastRefusal === key) return;
    this.lastRefusal = key;
    if (kind !== 'gave up') this.deps.event(upgradeEvents.failed(desired, reason));
    this.log.warn({ version: desired.version, revision: desired.revision, reason }, 'agent upgrade refused');
  }

  /** A `.part` is kept only while it is the desired file's. */
  private dropOtherDownloads(desired: DesiredAgent | undefined): void {
    const prefix = this.prefix;
    if (prefix === undefined) return;
    const keep = desired?.bundle ? `${partName(desired)}.part` : undefined;
    let names: string[];
    try {
      names = readdirSync(prefix.downloadDir);
    } catch {
      return;
    }
    for (const name of names) if (name !== keep) rmSync(join(prefix.downloadDir, name), { force: true });
  }
}

/** The prefix, when the launcher started this agent (FLOTILLA_RELEASES_DIR with a `current` link). */
function launcherPrefix(releasesDir: string | undefined): ReleasePrefix | undefined {
  if (releasesDir === undefined || releasesDir === '') return undefined;
  try {
    return lstatSync(join(releasesDir, 'current')).isSymbolicLink() ? new ReleasePrefix(releasesDir) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether `<prefix>/<desired version>/` is there, and from which tarball: it counts as installed
 * only when unpacked from the signed one, so a release file replaced under the same version (a
 * fixed build) is fetched and installed instead of the old folder being run again.
 */
function unpackedRelease(
  prefix: ReleasePrefix | undefined,
  desired: DesiredAgent | undefined,
): { installed: boolean; otherBuild: 'unused' | 'current' | undefined } {
  if (prefix === undefined || desired === undefined || !existsSync(join(prefix.release(desired.version), 'bin/flotilla')))
    return { installed: false, otherBuild: undefined };
  if (desired.bundle !== undefined && releaseSha256(prefix, desired.version) === desired.bundle.sha256)
    return { installed: true, otherBuild: undefined };
  return { installed: false, otherBuild: prefix.linkTarget('current') === desired.version ? 'current' : 'unused' };
}

/** What identifies the file an upgrade fetches: another key abandons the work under way. */
function fileKey(agent: DesiredAgent | undefined): string {
  return agent === undefined ? '' : `${agent.version}|${agent.bundle?.url ?? ''}|${agent.bundle?.sha256 ?? ''}`;
}

const SAFE_FILE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/;

/** The download's file name: the URL's last segment when it is a plain name. */
function partName(agent: DesiredAgent): string {
  const last = (agent.bundle?.url ?? '').split('?')[0]?.split('/').pop() ?? '';
  return SAFE_FILE.test(last) ? last : `flotilla-${agent.version}.tar.gz`;
}

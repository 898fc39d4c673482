/**
 * What the agent's upgrade tells the hub: the `agentUpgrade` field of the
 * state report (where it stands now) and the device events (each step, once,
 * through the outbox). The wording lives here, so the operator reads the same
 * sentences in `flotilla events` whatever step wrote them.
 *
 * Invariant: a report always fits the schema (a message is cut at 1024
 * characters: a long URL or a tool's stderr must not make the state report
 * invalid), and `since` is kept while the phase and version stay the same.
 */
import type { AgentUpgradeReport, DesiredAgent } from '../../shared/index.js';
import { Signal } from '../../shared/signal.js';
import { formatBytes } from '../runtime/disk.js';
import type { NewEvent } from '../wiring/uplink.js';
import type { RolledBackFile, TrialFile } from './device-files.js';

/** AgentUpgradeReport.message's maxLength. */
const MESSAGE_MAX = 1024;

export type ReportContent = Omit<AgentUpgradeReport, 'since'>;

/** What an agent running on trial reports until the hub has acknowledged it (bundle and image installs alike). */
export function confirmingReport(trial: TrialFile): ReportContent {
  return {
    version: trial.version,
    revision: trial.revision,
    phase: 'confirming',
    message: `on trial until it reports healthy (previous: ${trial.previous})`,
  };
}

export class UpgradeReport {
  /** Emitted when the report changed and should be sent (not on every downloaded chunk). */
  readonly changed: Signal<void>;
  private value: AgentUpgradeReport | undefined;

  constructor(
    private readonly now: () => number,
    onError: (err: unknown) => void,
  ) {
    this.changed = new Signal(onError);
  }

  get current(): AgentUpgradeReport | undefined {
    return this.value;
  }

  /** Replaces the report; `tell: false` for progress, which is sent now and then (tell()). */
  set(content: ReportContent | undefined, { tell = true } = {}): void {
    const before = this.value;
    const same = before !== undefined && content !== undefined && before.phase === content.phase && before.version === content.version;
    const since = same ? before.since : new Date(this.now()).toISOString();
    this.value =
      content === undefined
        ? undefined
        : { ...content, ...(content.message !== undefined ? { message: cut(content.message) } : {}), since };
    if (tell) this.tell();
  }

  tell(): void {
    this.changed.emit();
  }
}

function cut(message: string): string {
  return message.length <= MESSAGE_MAX ? message : `${message.slice(0, MESSAGE_MAX - 1)}…`;
}

/** The device events of an agent upgrade, one builder per type. */
export const upgradeEvents = {
  started: (running: string, desired: DesiredAgent, total: number, from: number): NewEvent => ({
    type: 'agent-upgrade-started',
    message: `upgrading the agent from ${running} to ${desired.version} (revision ${desired.revision}): downloading ${formatBytes(total)}${from > 0 ? ` from ${formatBytes(from)}` : ''}`,
  }),
  downloaded: (desired: DesiredAgent, bytes: number): NewEvent => ({
    type: 'agent-upgrade-downloaded',
    message: `agent ${desired.version} downloaded (${formatBytes(bytes)}), sha256 verified`,
  }),
  failed: (desired: DesiredAgent, why: string): NewEvent => ({
    type: 'agent-upgrade-failed',
    message: cut(`agent ${desired.version} (revision ${desired.revision}): ${why}`),
  }),
  restarting: (running: string, desired: DesiredAgent, healthTimeoutMs: number): NewEvent => ({
    type: 'agent-upgrade-restarting',
    message: `agent ${running} restarting into ${desired.version}: it has ${Math.round(healthTimeoutMs / 1000)}s to report healthy, else the launcher goes back to ${running}`,
  }),
  upgraded: (previous: string | undefined, running: string): NewEvent => ({
    type: 'agent-upgraded',
    message: `agent upgraded from ${previous ?? 'the previous version'} to ${running}`,
  }),
  rolledBack: (file: RolledBackFile, running: string): NewEvent => ({
    type: 'agent-rolled-back',
    message: `agent ${file.version} (revision ${file.revision}) rolled back to ${running}: ${file.reason}`,
  }),
};

/**
 * What the hub's `telemetry.link` command (shared/schemas/telemetry.ts) asks
 * of this agent, read purely, and the lease of a live log window.
 *
 * The hub sends the command on every connection (which encodings it decodes)
 * and while someone follows the device's logs (a short batch window, for a
 * while). The live window is a lease rather than an on/off switch: a hub
 * that dies or loses the link mid-follow cannot leave the device on the
 * expensive short window, because the lease runs out unless renewed.
 */
import { type Command, formatIssues, TELEMETRY_LINK_COMMAND, TelemetryLinkArgs, validate } from '../../shared/index.js';
import { TELEMETRY_ENCODINGS, type TelemetryEncoding } from '../../shared/telemetry-encoding.js';

export type TelemetryLinkVerdict =
  | { kind: 'tune'; args: TelemetryLinkArgs }
  /** Its time is up: a copy held in the session across an outage. */
  | { kind: 'expired' }
  | { kind: 'invalid'; reason: string }
  /** Not a telemetry.link command. */
  | { kind: 'other' };

export function readTelemetryLinkCommand(command: Command, nowMs: number): TelemetryLinkVerdict {
  if (command.type !== TELEMETRY_LINK_COMMAND) return { kind: 'other' };
  if (Date.parse(command.expiresAt) <= nowMs) return { kind: 'expired' };
  const result = validate(TelemetryLinkArgs, command.args ?? {});
  return result.ok ? { kind: 'tune', args: result.value } : { kind: 'invalid', reason: formatIssues(result.issues) };
}

/** The first encoding the hub lists that this agent speaks, if any. */
export function chooseEncoding(offered: readonly string[] | undefined): TelemetryEncoding | undefined {
  return offered?.find((name): name is TelemetryEncoding => (TELEMETRY_ENCODINGS as readonly string[]).includes(name));
}

export interface LiveLogWindowOptions {
  /** The agent's own window (config logBatchMs). */
  defaultMs: number;
  /** Told the window to use from now on, whenever it changes. */
  apply: (batchMs: number) => void;
}

/** The log batch window: the agent's own, or the hub's shorter one while its lease holds. */
export class LiveLogWindow {
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: LiveLogWindowOptions) {}

  /** A command's live-window part: a lease of `liveForMs` on `liveLogBatchMs` (never longer than the agent's own), or its end. */
  tune(args: Pick<TelemetryLinkArgs, 'liveLogBatchMs' | 'liveForMs'>): void {
    if (args.liveForMs === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    if (args.liveForMs === 0 || args.liveLogBatchMs === undefined) {
      this.options.apply(this.options.defaultMs);
      return;
    }
    this.options.apply(Math.min(args.liveLogBatchMs, this.options.defaultMs));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.options.apply(this.options.defaultMs);
    }, args.liveForMs);
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

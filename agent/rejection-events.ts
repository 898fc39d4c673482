/**
 * `desired-rejected` events, rate-limited. Whoever can publish on a device's
 * desired topic can send it forgeries as fast as the link carries them; each
 * refusal must not become an event in the outbox (bounded, but shared with
 * real events, logs and metrics) nor a warning in the log.
 *
 * Invariants:
 * - At most one event per reason per `intervalMs` (default one minute). The
 *   first refusal for a reason is reported at once.
 * - Refusals held back in a window are not lost: when the window ends one
 *   event says how many there were and quotes the latest.
 * - Timers are unref'd and cleared by close(): nothing keeps the agent alive.
 */
import type { Logger } from 'pino';

export const REJECTION_EVENT_INTERVAL_MS = 60_000;

export interface RejectionEventsOptions {
  /** Publishes one event's message (the agent wraps it as a `desired-rejected` event). */
  emit: (message: string) => void;
  logger: Logger;
  intervalMs?: number;
  now?: () => number;
}

interface Window {
  reportedAt: number;
  /** Refusals since the last event, not yet reported. */
  held: number;
  latest: string;
  timer: NodeJS.Timeout | undefined;
}

export class RejectionEvents {
  private readonly windows = new Map<string, Window>();
  private readonly intervalMs: number;
  private readonly now: () => number;

  constructor(private readonly options: RejectionEventsOptions) {
    this.intervalMs = options.intervalMs ?? REJECTION_EVENT_INTERVAL_MS;
    this.now = options.now ?? Date.now;
  }

  /** One refused document; `reason` groups refusals for the rate limit ("unsigned", "bad signature", …). */
  refused(reason: string, message: string): void {
    const window = this.windows.get(reason);
    if (!window || this.now() - window.reportedAt >= this.intervalMs) {
      this.report(reason, message, window?.held ?? 0);
      return;
    }
    window.held += 1;
    window.latest = message;
    this.options.logger.debug({ reason, held: window.held }, message);
    if (!window.timer) {
      window.timer = setTimeout(() => this.flush(reason), Math.max(0, window.reportedAt + this.intervalMs - this.now()));
      window.timer.unref();
    }
  }

  close(): void {
    for (const window of this.windows.values()) clearTimeout(window.timer);
    this.windows.clear();
  }

  private flush(reason: string): void {
    const window = this.windows.get(reason);
    if (!window) return;
    window.timer = undefined;
    // The latest held refusal is the one quoted; the others are counted.
    if (window.held > 0) this.report(reason, window.latest, window.held - 1);
  }

  private report(reason: string, message: string, others: number): void {
    const previous = this.windows.get(reason);
    clearTimeout(previous?.timer);
    this.windows.set(reason, { reportedAt: this.now(), held: 0, latest: message, timer: undefined });
    const text = others > 0 ? `${message} (and ${others} more refused as ${reason} since the last report)` : message;
    this.options.logger.warn({ reason, others }, text);
    this.options.emit(text);
  }
}

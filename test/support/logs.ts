/**
 * A real pino logger whose JSON lines are kept in memory, so a test can assert
 * what the hub or agent logged (e.g. "invalid message dropped" with its reason).
 */
import { type Logger, pino } from 'pino';
import { waitFor } from './wait.js';

export interface LogRecord {
  level: number;
  msg: string;
  [field: string]: unknown;
}

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

export class LogCapture {
  readonly records: LogRecord[] = [];
  readonly logger: Logger;

  constructor(level: LogLevel = 'warn') {
    this.logger = pino(
      { level },
      {
        write: (line: string) => {
          this.records.push(JSON.parse(line) as LogRecord);
        },
      },
    );
  }

  /** Records with this message (and, optionally, matching fields), in the order they were logged. */
  matching(msg: string, where: (record: LogRecord) => boolean = () => true): LogRecord[] {
    return this.records.filter((r) => r.msg === msg && where(r));
  }

  /** Waits until at least `count` records with this message match, and returns the newest one. */
  async waitFor(msg: string, where: (record: LogRecord) => boolean = () => true, count = 1): Promise<LogRecord> {
    try {
      return await waitFor(
        `log "${msg}" ×${count}`,
        () => {
          const found = this.matching(msg, where);
          return found.length >= count ? found[found.length - 1] : undefined;
        },
        { timeoutMs: 10_000, intervalMs: 20 },
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}; last logged: ${JSON.stringify(this.records.slice(-8).map((r) => r.msg))}`);
    }
  }
}

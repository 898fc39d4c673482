import { type Logger, pino } from 'pino';

/** JSON lines on stdout: one structured record per event, ids as fields. */
export function createLogger(level: string, name: string): Logger {
  return pino({ name, level, base: { pid: process.pid } });
}

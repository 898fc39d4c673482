import { Type } from '@sinclair/typebox';
import { type Logger, pino } from 'pino';

/** pino's levels, as the hub's and the agent's configs and the CLI accept them. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LogLevelSchema = Type.Union(LOG_LEVELS.map((level) => Type.Literal(level)));

/** JSON lines on stdout: one structured record per event, ids as fields. */
export function createLogger(level: string, name: string): Logger {
  return pino({ name, level, base: { pid: process.pid } });
}

import { Type } from '@sinclair/typebox';
import { type DestinationStream, type Logger, pino } from 'pino';

/** pino's levels, as the hub's and the agent's configs and the CLI accept them. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LogLevelSchema = Type.Union(LOG_LEVELS.map((level) => Type.Literal(level)));

/**
 * Field names whose values are credentials wherever they appear: MQTT and
 * account passwords, device secrets, API keys and registration tokens, HTTP
 * `Authorization` and cookies. A log line is read by more people, and kept
 * longer, than the thing it describes.
 */
export const REDACTED_FIELDS = [
  'password',
  'secret',
  'token',
  'key',
  'apiKey',
  'privateKey',
  'authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
] as const;

/** What a redacted value becomes in the output. */
export const REDACTED = '[redacted]';

/**
 * pino `redact` paths: each field at the top of a record and nested one or
 * two objects deep (`*.password`, `*.*.password`, e.g. `req.headers.authorization`
 * or `{ user: { password } }`; array elements count as a level). Deeper
 * nesting is not searched: every path is a lookup on every record, and
 * Flotilla's records are flat, ids as fields. A record holding a whole
 * document (a desired state with secrets in it) must not be logged at all:
 * redaction is the safety net, not the policy.
 */
export const REDACT_PATHS: string[] = REDACTED_FIELDS.flatMap((field) => {
  // Names that are not identifiers (set-cookie) need bracket syntax.
  const key = /^[A-Za-z_$][\w$]*$/.test(field) ? field : `["${field}"]`;
  const nested = key.startsWith('[') ? key : `.${key}`;
  return [key, `*${nested}`, `*.*${nested}`];
});

/**
 * JSON lines on stdout (or `destination`, for tests): one structured record
 * per event, ids as fields, credentials redacted (REDACT_PATHS).
 */
export function createLogger(level: string, name: string, destination?: DestinationStream): Logger {
  const options = { name, level, base: { pid: process.pid }, redact: { paths: REDACT_PATHS, censor: REDACTED } };
  return destination ? pino(options, destination) : pino(options);
}

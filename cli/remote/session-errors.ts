/**
 * How a remote-access session that did not end with its command's exit code
 * is reported: one CliError whose exit code says what kind of failure it was
 * (docs/remote-protocol.md §8: not_found → 3, unauthorized/forbidden → 4, invalid_request → 2,
 * anything else, a lost link or hub included → 1).
 */
import { SESSION_FAILURES, type SessionFailureCode } from '../../shared/remote/websocket.js';
import { CliError, EXIT_HUB_ERROR, EXIT_INVALID_INPUT, EXIT_NOT_FOUND, EXIT_UNAUTHORIZED, type ExitCode } from '../errors.js';

export class SessionError extends CliError {
  constructor(
    /** The hub's failure code, when the hub named one. */
    readonly code: SessionFailureCode | undefined,
    message: string,
    lines: readonly string[] = [],
  ) {
    super(message, code === undefined ? EXIT_HUB_ERROR : exitCodeForFailure(code), lines);
    this.name = 'SessionError';
  }
}

export function exitCodeForFailure(code: SessionFailureCode): ExitCode {
  switch (code) {
    case 'not_found':
      return EXIT_NOT_FOUND;
    case 'unauthorized':
    case 'forbidden':
      return EXIT_UNAUTHORIZED;
    case 'invalid_request':
      return EXIT_INVALID_INPUT;
    default:
      return EXIT_HUB_ERROR;
  }
}

const FAILURE_BY_CLOSE_CODE = new Map<number, SessionFailureCode>(
  Object.entries(SESSION_FAILURES).map(([code, closeCode]) => [closeCode, code as SessionFailureCode]),
);

/** The failure a WebSocket close code stands for (4403 → forbidden), if it is one of the hub's. */
export function failureForCloseCode(closeCode: number): SessionFailureCode | undefined {
  return FAILURE_BY_CLOSE_CODE.get(closeCode);
}

export function isFailureCode(value: unknown): value is SessionFailureCode {
  return typeof value === 'string' && Object.hasOwn(SESSION_FAILURES, value);
}

/** What to do about a refusal, under the hub's own words. */
export function adviceFor(code: SessionFailureCode): string[] {
  switch (code) {
    case 'unauthorized':
      return ["pass a valid key with --token or FLOTILLA_TOKEN (the hub's admin key is in <data-dir>/admin.key)"];
    case 'forbidden':
      return [
        'exec and port-forward into apps need the operator role, a host shell or host port admin (flotilla serviceaccount create NAME --role …)',
      ];
    case 'offline':
      return ['the device is not connected to the hub: `flotilla get devices` shows when it was last seen'];
    default:
      return [];
  }
}

/**
 * Exit codes and the errors that carry them. Every failure in the CLI ends
 * as one of these codes, so scripts can tell "fix your input" (2) from "it
 * is not there" (3) from "the hub is down or broken" (1).
 */

/** Success. */
export const EXIT_OK = 0;
/** The hub answered with an error (other than 400/404), or could not be reached. */
export const EXIT_HUB_ERROR = 1;
/**
 * What a watch followed did not succeed (`rollout status -w`, `agent upgrade -w`): devices
 * failed or rolled back, the rollout paused on failures or was aborted, or a newer
 * revision took its place. The same code as a hub error, as kubectl's rollout status.
 */
export const EXIT_FAILED = 1;
/** Invalid input: bad arguments, a bad spec or labels, or the hub answered 400. */
export const EXIT_INVALID_INPUT = 2;
/** The hub answered 404: no such app or device. */
export const EXIT_NOT_FOUND = 3;
/** The hub refused the credentials: no valid token (401), or a role too low for the request (403). */
export const EXIT_UNAUTHORIZED = 4;

/** `diff` found changes: the set would create, change or delete an app (as `kubectl diff` exits). */
export const EXIT_DIFF_CHANGES = 1;
/**
 * `diff` failed where another command exits 1: the hub could not be reached, refused the
 * set (a conflict) or failed. Above 1, as every error of `diff`, so CI tells changes from failures.
 */
export const EXIT_DIFF_FAILED = 5;

export type ExitCode =
  | typeof EXIT_OK
  | typeof EXIT_HUB_ERROR
  | typeof EXIT_INVALID_INPUT
  | typeof EXIT_NOT_FOUND
  | typeof EXIT_UNAUTHORIZED
  | typeof EXIT_DIFF_FAILED;

/**
 * An error the CLI reports itself: `message` is printed as `error: <message>`,
 * each of `lines` below it, indented, and the process exits with `exitCode`.
 */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    readonly lines: readonly string[] = [],
  ) {
    super(message);
    this.name = 'CliError';
  }

  /** `error: <message>`, then each line indented by two spaces. */
  format(): string {
    return [`error: ${this.message}`, ...this.lines.map((line) => `  ${line}`)].map((line) => `${line}\n`).join('');
  }
}

/** Bad input caught before anything was sent anywhere. */
export class UsageError extends CliError {
  constructor(message: string, lines: readonly string[] = []) {
    super(message, EXIT_INVALID_INPUT, lines);
    this.name = 'UsageError';
  }
}

/** Several problems found in one pass (every invalid document of an apply), reported together. */
export class CliErrors extends CliError {
  constructor(readonly errors: readonly [CliError, ...CliError[]]) {
    super(errors.map((e) => e.message).join('; '), errors[0].exitCode);
    this.name = 'CliErrors';
  }

  override format(): string {
    return this.errors.map((e) => e.format()).join('');
  }
}

/**
 * A remote command ended with this exit code (`flotilla exec … -- false`
 * exits 1): not an error of the CLI's, so nothing is printed; the process
 * exits with the command's own code, as `docker exec` and `ssh` do. `diff`
 * ends this way too when it found changes (EXIT_DIFF_CHANGES): its output
 * has said what they are.
 */
export class CommandExit extends Error {
  constructor(readonly code: number) {
    super(`the command exited with code ${code}`);
    this.name = 'CommandExit';
  }
}

export function isCliError(err: unknown): err is CliError {
  return err instanceof CliError;
}

/**
 * What opening each kind of session takes on the device, before the hub is
 * answered: the container found (or the refusal that it is not there), the
 * process started, the forward target known. A refusal is a SessionOpenError
 * whose code the reply carries.
 */
import type { SessionErrorCode, SessionRequest } from '../../shared/remote/index.js';
import { isNotFound, isRuntimeError } from '../runtime/errors.js';
import { containerName } from '../runtime/labels.js';
import type { ContainerRuntime, SessionTarget } from '../runtime/runtime.js';
import { ForwardSession } from './forward-session.js';
import { startHostShell } from './host-shell.js';
import { ProcessSession } from './process-session.js';
import type { Session, SessionContext } from './session.js';

export class SessionOpenError extends Error {
  override readonly name = 'SessionOpenError';
  constructor(
    readonly code: SessionErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface OpenDeps {
  runtime: Pick<ContainerRuntime, 'sessionTarget' | 'exec'>;
  allowHostShell: boolean;
}

/** A session ready to start: what it runs has started (or is known), and it is answered with `container`. */
export interface PreparedSession {
  container?: string;
  /** Builds the session around what was started. */
  create(context: SessionContext): Session;
  /** Stops what was started, when the session will not be created after all (the link dropped meanwhile). */
  abandon(): void;
}

export async function prepareSession(request: SessionRequest, deps: OpenDeps): Promise<PreparedSession> {
  switch (request.kind) {
    case 'exec': {
      const target = await findTarget(deps, request.app, request.container);
      const process = await deps.runtime
        .exec(target, {
          command: request.command,
          tty: request.tty,
          stdin: request.stdin,
          ...(request.rows !== undefined ? { rows: request.rows } : {}),
          ...(request.cols !== undefined ? { cols: request.cols } : {}),
        })
        .catch((err: unknown) => {
          throw new SessionOpenError(isNotFound(err) ? 'not_found' : 'failed', (err as Error).message);
        });
      return {
        container: containerName(target.app, target.container),
        create: (context) => new ProcessSession(context, process, request.stdin),
        abandon: () => process.kill(),
      };
    }
    case 'shell': {
      if (!deps.allowHostShell) {
        throw new SessionOpenError('forbidden', 'this device does not allow a host shell (the agent runs without --allow-host-shell)');
      }
      const process = startHostShell({ tty: request.tty });
      // Before the session is answered, so the shell's first look at its terminal sees the opener's size.
      if (request.tty && request.rows !== undefined && request.cols !== undefined) {
        await process.resize(request.rows, request.cols).catch(() => {});
      }
      return {
        create: (context) => new ProcessSession(context, process, true),
        abandon: () => process.kill(),
      };
    }
    case 'forward': {
      if (request.app === undefined) {
        return { create: (context) => new ForwardSession(context, '127.0.0.1', request.port), abandon: () => {} };
      }
      const target = await findTarget(deps, request.app, request.container);
      const host = forwardHost(target);
      return {
        container: containerName(target.app, target.container),
        create: (context) => new ForwardSession(context, host, request.port),
        abandon: () => {},
      };
    }
  }
}

async function findTarget(deps: OpenDeps, app: string, container: string | undefined): Promise<SessionTarget> {
  try {
    return await deps.runtime.sessionTarget(app, container);
  } catch (err) {
    if (isNotFound(err)) throw new SessionOpenError('not_found', err.message);
    throw new SessionOpenError('failed', isRuntimeError(err) ? err.message : `finding the container failed: ${(err as Error).message}`);
  }
}

/** Where a forwarded connection to an app's container goes: its address, or the host's loopback under host networking. */
function forwardHost(target: SessionTarget): string {
  if (target.networkMode === 'host') return '127.0.0.1';
  if (target.ipAddress === undefined) {
    throw new SessionOpenError('failed', `container ${target.dockerName} has no network address (network mode ${target.networkMode})`);
  }
  return target.ipAddress;
}

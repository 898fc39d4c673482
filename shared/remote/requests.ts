/**
 * What opens a remote-access session, and who may ask for it.
 *
 * The CLI (or the console) sends a SessionRequest to the hub as the first
 * WebSocket message; the hub checks the caller's role, gives the session an
 * unguessable id and sends the device a `session.open` command on its
 * `commands` topic; the device answers on `replies`. Data then flows on the
 * session's own topics (Topics.session) in frames (frames.ts). The hub ends a
 * session it relays with a `session.close` command.
 */
import { type Static, Type } from '@sinclair/typebox';
import { Name } from '../schemas/spec.js';
import { SESSION_ID_PATTERN } from './session-id.js';

export { isSessionId, newSessionId, SESSION_ID_PATTERN } from './session-id.js';

export const SessionId = Type.String({ pattern: SESSION_ID_PATTERN });

const TerminalSize = {
  rows: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
  cols: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
};

/** `flotilla exec DEVICE APP[/CONTAINER] -- CMD…`: a command in an app's container. */
export const ExecRequest = Type.Object(
  {
    kind: Type.Literal('exec'),
    app: Name,
    /** Required when the app has more than one container. */
    container: Type.Optional(Name),
    command: Type.Array(Type.String({ maxLength: 4096 }), { minItems: 1, maxItems: 256 }),
    /** A terminal (`-t`): stdout and stderr merge, and the size and control keys pass through. */
    tty: Type.Boolean(),
    /** Keep stdin open (`-i`); otherwise the command's stdin is closed at once. */
    stdin: Type.Boolean(),
    ...TerminalSize,
  },
  { additionalProperties: false },
);

/** `flotilla shell DEVICE`: a login shell on the device's host; admin only, and only where the agent allows it. */
export const ShellRequest = Type.Object(
  { kind: Type.Literal('shell'), tty: Type.Boolean(), ...TerminalSize },
  { additionalProperties: false },
);

/**
 * `flotilla port-forward` and `ssh-proxy`: TCP connections to one target on
 * the device: an app container's port (`app` set), or a port on the device's
 * own loopback (no `app`: admin only).
 */
export const ForwardRequest = Type.Object(
  {
    kind: Type.Literal('forward'),
    app: Type.Optional(Name),
    container: Type.Optional(Name),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
  },
  { additionalProperties: false },
);

export const SessionRequest = Type.Union([ExecRequest, ShellRequest, ForwardRequest]);
export type SessionRequest = Static<typeof SessionRequest>;
export type SessionKind = SessionRequest['kind'];

/** Whether the request reaches the device's host (a host shell, a host port) rather than an app's container. */
export function reachesHost(request: SessionRequest): boolean {
  return request.kind === 'shell' || (request.kind === 'forward' && request.app === undefined);
}

/** The role a request needs: the host is admin's, app containers operator's; a viewer opens nothing. */
export function sessionRole(request: SessionRequest): 'operator' | 'admin' {
  return reachesHost(request) ? 'admin' : 'operator';
}

/** A one-line account of what the session does, for audit records and events. */
export function describeRequest(request: SessionRequest): string {
  switch (request.kind) {
    case 'exec': {
      const target = request.container ? `${request.app}/${request.container}` : request.app;
      return `exec${request.tty ? ' -t' : ''} in ${target}: ${request.command.join(' ')}`.slice(0, 1024);
    }
    case 'shell':
      return 'host shell';
    case 'forward':
      return request.app === undefined
        ? `port-forward to host port ${request.port}`
        : `port-forward to ${request.container ? `${request.app}/${request.container}` : request.app}:${request.port}`;
  }
}

/** `args` of the `session.open` command. */
export const SessionOpenArgs = Type.Object(
  {
    sessionId: SessionId,
    request: SessionRequest,
    /** Flow-control window per channel, in bytes, each side grants at first (flow.ts). */
    window: Type.Integer({ minimum: 4096, maximum: 16 * 1024 * 1024 }),
    /** Who opened it (audit name), for the device's log. */
    openedBy: Type.String({ maxLength: 256 }),
  },
  { additionalProperties: false },
);
export type SessionOpenArgs = Static<typeof SessionOpenArgs>;

/** `args` of the `session.close` command: the hub ends a session (its opener left, or an admin ended it). */
export const SessionCloseArgs = Type.Object(
  { sessionId: SessionId, reason: Type.String({ maxLength: 1024 }) },
  { additionalProperties: false },
);
export type SessionCloseArgs = Static<typeof SessionCloseArgs>;

export const SESSION_COMMANDS = { open: 'session.open', close: 'session.close' } as const;

/** `result` of a successful `session.open` reply. */
export const SessionOpened = Type.Object(
  {
    sessionId: SessionId,
    /** The container the session runs in or reaches (`app_container`), when it is one. */
    container: Type.Optional(Type.String({ maxLength: 256 })),
  },
  { additionalProperties: false },
);
export type SessionOpened = Static<typeof SessionOpened>;

/**
 * Error codes a device answers `session.open` with (the CLI maps them to its
 * exit codes): not_found (no such app or container), forbidden (host shell
 * not allowed on this agent), busy (the agent's session limit), invalid
 * (a bad request), failed (the engine or the target refused).
 */
export const SESSION_ERROR_CODES = ['not_found', 'forbidden', 'busy', 'invalid', 'failed'] as const;
export type SessionErrorCode = (typeof SESSION_ERROR_CODES)[number];

/**
 * One remote-access WebSocket, from the upgrade to the session's start
 * (docs/remote-protocol.md §5): the client sends one text message, a SessionRequest;
 * the hub checks, in this order, the caller's credentials (the Authorization
 * header, or the key a subprotocol carries: session-protocols.ts), the request, the
 * role it needs (refused before the device is asked, and audited), that the
 * device exists and is connected; then asks the device and answers with
 * SessionReady, or SessionFailed and a close. From there relay.ts carries it.
 *
 * The hub pings every PING_INTERVAL_MS and drops a client that missed two
 * pongs; the device is then told to close the session.
 */
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import { decode, formatIssues, isDeviceId } from '../../shared/index.js';
import { DEFAULT_WINDOW_BYTES } from '../../shared/remote/flow.js';
import { keepPeerAlive } from '../../shared/remote/keepalive.js';
import { describeRequest, newSessionId, SessionRequest, sessionRole } from '../../shared/remote/requests.js';
import type { SessionReady } from '../../shared/remote/websocket.js';
import type { HttpAuth } from '../auth/http-auth.js';
import { hasRole, type Identity } from '../auth/identity.js';
import { ApiError } from '../dispatcher/errors.js';
import type { AuditStart } from './audit-store.js';
import { failSocket, type RelayDeps, SessionRelay } from './relay.js';
import { sessionAuthorization } from './session-protocols.js';
import { actorOf } from './session-record.js';

export const PING_INTERVAL_MS = 10_000;
/** How long the hub waits for the request after the upgrade. */
const REQUEST_TIMEOUT_MS = 10_000;

export interface SessionSocketDeps extends RelayDeps {
  auth: HttpAuth;
  isKnownDevice(deviceId: string): Promise<boolean>;
  /** Whether the device has an MQTT connection to this hub now. */
  isConnected(deviceId: string): boolean | Promise<boolean>;
  window?: number;
  pingIntervalMs?: number;
  requestTimeoutMs?: number;
}

export async function serveSessionSocket(ws: WebSocket, req: IncomingMessage, deviceId: string, deps: SessionSocketDeps): Promise<void> {
  const keepalive = keepAlive(ws, deps.pingIntervalMs ?? PING_INTERVAL_MS);
  ws.once('close', () => keepalive.stop());
  ws.on('error', (err) => deps.logger.debug({ deviceId, err: err.message }, 'remote-access socket error'));
  const first = firstMessage(ws, deps.requestTimeoutMs ?? REQUEST_TIMEOUT_MS);

  let identity: Identity;
  try {
    identity = await deps.auth.identify(req, sessionAuthorization(req));
  } catch (err) {
    const unauthorized = err instanceof ApiError && err.code === 'unauthorized';
    return failSocket(ws, unauthorized ? 'unauthorized' : 'failed', (err as Error).message);
  }
  const message = await first;
  if (message === undefined) return failSocket(ws, 'invalid_request', 'no session request within 10 s');
  if (message.isBinary) return failSocket(ws, 'invalid_request', 'the session request must be a text message');
  const decoded = decode(SessionRequest, message.data);
  if (!decoded.ok) return failSocket(ws, 'invalid_request', `invalid session request: ${formatIssues(decoded.issues)}`);
  const request = decoded.value;

  const start: AuditStart = { actor: actorOf(identity), device: deviceId, kind: request.kind, what: describeRequest(request) };
  const role = sessionRole(request);
  if (!hasRole(identity, role)) {
    const reason = `${start.what} needs role ${role}${identity.kind === 'account' ? `; ${identity.name} is ${identity.role}` : ''}`;
    deps.record.denied(start, reason);
    return failSocket(ws, 'forbidden', reason);
  }
  if (!isDeviceId(deviceId) || !(await deps.isKnownDevice(deviceId))) {
    return failSocket(ws, 'not_found', `no device "${deviceId}"`);
  }
  if (!(await deps.isConnected(deviceId))) {
    deps.record.failed(start, 'the device is offline');
    return failSocket(ws, 'offline', `device ${deviceId} is not connected to the hub`);
  }
  await open(ws, deviceId, start, request, deps, keepalive);
}

async function open(
  ws: WebSocket,
  deviceId: string,
  start: AuditStart,
  request: SessionRequest,
  deps: SessionSocketDeps,
  keepalive: KeepAlive,
): Promise<void> {
  const sessionId = newSessionId();
  const window = deps.window ?? DEFAULT_WINDOW_BYTES;
  const relay = new SessionRelay(ws, sessionId, deviceId, start, deps);
  let cancelOpen: (() => void) | undefined;
  let aborted: { code: 'link_lost' | 'failed'; reason: string } | undefined;
  relay.onAbortOpen = (code, reason) => {
    aborted = { code: code === 'link_lost' ? 'link_lost' : 'failed', reason };
    cancelOpen?.();
  };
  const onEarlyClose = () => cancelOpen?.();
  ws.once('close', onEarlyClose);
  // In the registry before the device is asked: its reply and first frames may come at once.
  deps.registry.add({ id: sessionId, deviceId, actor: start.actor, request, link: relay });
  const outcome = await deps.commands.open(deviceId, { sessionId, request, window, openedBy: start.actor }, (cancel) => {
    cancelOpen = cancel;
  });
  ws.off('close', onEarlyClose);
  if (outcome.ok && ws.readyState === ws.OPEN) {
    ws.once('close', () => relay.clientGone(keepalive.lost() ? 'the opener stopped answering pings' : 'the opener left'));
    const ready: SessionReady = {
      type: 'opened',
      sessionId,
      window,
      ...(outcome.opened.container ? { container: outcome.opened.container } : {}),
    };
    relay.opened(ready);
    return;
  }
  relay.abandon();
  if (aborted) {
    deps.record.failed(start, aborted.reason);
    if (aborted.code === 'failed') deps.commands.close(deviceId, { sessionId, reason: aborted.reason });
    return failSocket(ws, aborted.code, aborted.reason);
  }
  if (outcome.ok || outcome.cancelled) {
    // The opener left while the device was opening: the device may have started it.
    deps.record.failed(start, 'the opener left before the session opened');
    deps.commands.close(deviceId, { sessionId, reason: 'the opener left' });
    return;
  }
  // A device that answers late may still open it: it is told to close it.
  if (outcome.code === 'timeout') deps.commands.close(deviceId, { sessionId, reason: outcome.message });
  if (outcome.code === 'forbidden') deps.record.denied(start, outcome.message);
  else deps.record.failed(start, outcome.message);
  failSocket(ws, outcome.code, outcome.message);
}

interface KeepAlive {
  stop(): void;
  /** Whether the socket was dropped for missing pongs. */
  lost(): boolean;
}

function keepAlive(ws: WebSocket, intervalMs: number): KeepAlive {
  let lost = false;
  const stop = keepPeerAlive(ws, intervalMs, () => {
    lost = true;
    ws.terminate();
  });
  return { stop, lost: () => lost };
}

/** The first message, or undefined if the socket closed or nothing came within `timeoutMs`. */
function firstMessage(ws: WebSocket, timeoutMs: number): Promise<{ data: Buffer; isBinary: boolean } | undefined> {
  return new Promise((resolve) => {
    const done = (value: { data: Buffer; isBinary: boolean } | undefined) => {
      clearTimeout(timer);
      ws.off('message', onMessage);
      ws.off('close', onClose);
      resolve(value);
    };
    const onMessage = (data: Buffer, isBinary: boolean) => done({ data, isBinary });
    const onClose = () => done(undefined);
    const timer = setTimeout(() => done(undefined), timeoutMs);
    timer.unref();
    ws.on('message', onMessage);
    ws.on('close', onClose);
  });
}

/**
 * The CLI's end of a remote-access session: a WebSocket to the hub
 * (`GET /api/v1/devices/:id/sessions`, docs/remote-protocol.md §5) that sends one JSON
 * SessionRequest, waits for the hub's one text answer (SessionReady or
 * SessionFailed), then carries frames (shared/remote/frames.ts), one per
 * binary message, numbered by a FrameSender and checked by a FrameReceiver.
 *
 * Invariants:
 * - a session ends once, with one SessionEnd: the command's EXIT, a close the
 *   CLI asked for, or a failure (the hub's SessionFailed or close code, the
 *   device's CLOSE 0, a frame gap, a lost hub), so a command reports one reason;
 * - frames that arrive before the command attached its handler (ws emits
 *   every message of one TCP read in the same tick as `opened`) are queued, not lost;
 * - the hub is pinged every `pingIntervalMs`: two pings without a pong and
 *   the session fails as "lost the hub" (the hub pings us too; ws answers those).
 *
 * `ws` is imported when a session opens, so commands that never open one
 * (and `--help`) do not load it.
 */
import type { ClientOptions, RawData, WebSocket } from 'ws';
import { DEFAULT_WINDOW_BYTES } from '../../shared/remote/flow.js';
import { CHANNEL, FRAME, type Frame, type FrameBody, FrameReceiver, FrameSender } from '../../shared/remote/frames.js';
import { keepPeerAlive, MISSED_PONGS_LIMIT } from '../../shared/remote/keepalive.js';
import type { SessionRequest } from '../../shared/remote/requests.js';
import type { SessionReady } from '../../shared/remote/websocket.js';
import { CliError, EXIT_HUB_ERROR, EXIT_INVALID_INPUT, EXIT_NOT_FOUND, EXIT_UNAUTHORIZED, type ExitCode } from '../errors.js';
import { HubUnreachableError, parseHubUrl } from '../hub-url.js';
import { adviceFor, failureForCloseCode, isFailureCode, SessionError } from './session-errors.js';

/** Where sessions are opened, and as whom. */
export interface SessionTarget {
  hub: string;
  token?: string;
  /** PEM text of the CA to trust for a wss:// hub, instead of the system's store (--ca). */
  ca?: string;
}

export interface OpenSessionOptions extends SessionTarget {
  device: string;
  request: SessionRequest;
  /** How often the hub is pinged; two unanswered pings mean it is gone. */
  pingIntervalMs?: number;
  /** How long the hub may take to answer the request (it gives the device 10 s). */
  openTimeoutMs?: number;
}

export const DEFAULT_PING_INTERVAL_MS = 10_000;
const DEFAULT_OPEN_TIMEOUT_MS = 30_000;
/** How long a close the CLI asked for may take before the socket is dropped. */
const CLOSE_GRACE_MS = 1000;
/** One frame is at most 9 + 32 KiB; anything far beyond is not the hub speaking the protocol. */
const MAX_MESSAGE_BYTES = 1024 * 1024;

export type SessionEnd = { kind: 'exit'; code: number } | { kind: 'closed' } | { kind: 'failed'; error: CliError };

/** The WebSocket URL of a device's sessions under the hub's HTTP URL: http → ws, https → wss. */
export function sessionUrl(hub: string, device: string): URL {
  const url = new URL(`api/v1/devices/${encodeURIComponent(device)}/sessions`, parseHubUrl(hub));
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url;
}

/** An open session: frames out with `send`, frames in through `start`'s handler, its end in `ended`. */
export class RemoteSession {
  readonly ended: Promise<SessionEnd>;
  private resolveEnded!: (end: SessionEnd) => void;
  private endedWith: SessionEnd | undefined;
  private readonly sender: FrameSender;
  private handler: ((frame: Frame) => void) | undefined;
  private queued: Frame[] = [];

  constructor(
    private readonly ws: WebSocket,
    readonly ready: SessionReady,
  ) {
    this.ended = new Promise((resolve) => {
      this.resolveEnded = resolve;
    });
    this.sender = new FrameSender((bytes) => {
      if (this.ws.readyState === this.ws.OPEN) this.ws.send(bytes, { binary: true });
    });
  }

  /** The flow-control window each side grants per channel at first. */
  get window(): number {
    return this.ready.window > 0 ? this.ready.window : DEFAULT_WINDOW_BYTES;
  }

  get isOver(): boolean {
    return this.endedWith !== undefined;
  }

  /** Delivers incoming frames to `onFrame`, those that came before it first. */
  start(onFrame: (frame: Frame) => void): void {
    this.handler = onFrame;
    const queued = this.queued;
    this.queued = [];
    for (const frame of queued) onFrame(frame);
  }

  send(body: FrameBody): void {
    if (this.endedWith === undefined) this.sender.send(body);
  }

  /** Ends the session from this side (the hub then tells the device); resolves once the socket closed. */
  close(): Promise<void> {
    this.finish({ kind: 'closed' });
    return closeSocket(this.ws);
  }

  /** Ends the session for a reason seen here (a channel sent past its window, a local error). */
  fail(error: CliError): void {
    this.finish({ kind: 'failed', error });
    void closeSocket(this.ws);
  }

  /** @internal: the socket's events, routed by openSession. */
  receive(frame: Frame): void {
    if (this.endedWith !== undefined) return;
    if (this.handler) this.handler(frame);
    else this.queued.push(frame);
    if (frame.channel !== CHANNEL.session) return;
    if (frame.type === FRAME.exit) {
      this.finish({ kind: 'exit', code: frame.code });
      void closeSocket(this.ws);
    } else if (frame.type === FRAME.close) {
      this.fail(new SessionError(undefined, `the session ended on the device: ${frame.reason}`));
    }
  }

  /** @internal */
  finish(end: SessionEnd): void {
    if (this.endedWith !== undefined) return;
    this.endedWith = end;
    this.resolveEnded(end);
  }
}

function closeSocket(ws: WebSocket): Promise<void> {
  if (ws.readyState === ws.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      ws.terminate();
      resolve();
    }, CLOSE_GRACE_MS);
    timer.unref();
    ws.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(1000);
  });
}

/**
 * Opens a session: resolves once the hub answered `opened`, rejects with a
 * CliError (SessionError, HubUnreachableError) when it could not open.
 */
export async function openSession(options: OpenSessionOptions): Promise<RemoteSession> {
  const url = sessionUrl(options.hub, options.device);
  const { WebSocket } = await import('ws');
  const wsOptions: ClientOptions = {
    perMessageDeflate: false,
    maxPayload: MAX_MESSAGE_BYTES,
    handshakeTimeout: options.openTimeoutMs ?? DEFAULT_OPEN_TIMEOUT_MS,
    headers: options.token !== undefined ? { authorization: `Bearer ${options.token}` } : {},
    ...(options.ca !== undefined ? { ca: options.ca } : {}),
  };
  const ws = new WebSocket(url, wsOptions);
  const pingIntervalMs = options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS;

  return new Promise<RemoteSession>((resolve, reject) => {
    let session: RemoteSession | undefined;
    let settled = false;
    const receiver = new FrameReceiver();

    const openTimer = setTimeout(() => {
      failBeforeOpen(
        new SessionError(
          'timeout',
          `the hub did not answer the session request within ${seconds(options.openTimeoutMs ?? DEFAULT_OPEN_TIMEOUT_MS)}`,
        ),
      );
      ws.terminate();
    }, options.openTimeoutMs ?? DEFAULT_OPEN_TIMEOUT_MS);

    const stopPinging = keepPeerAlive(ws, pingIntervalMs, () => {
      const error = new SessionError(
        undefined,
        `lost the hub at ${options.hub}: no answer to ${MISSED_PONGS_LIMIT} pings in ${seconds(MISSED_PONGS_LIMIT * pingIntervalMs)}`,
      );
      if (session) session.finish({ kind: 'failed', error });
      else failBeforeOpen(error);
      ws.terminate();
    });

    function failBeforeOpen(error: CliError): void {
      if (settled) return;
      settled = true;
      clearTimeout(openTimer);
      reject(error);
    }

    ws.on('unexpected-response', (_req, res) => {
      const status = res.statusCode ?? 0;
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => {
        if (chunks.length < 16) chunks.push(chunk);
      });
      res.on('end', () => {
        failBeforeOpen(refusedUpgrade(status, Buffer.concat(chunks).toString('utf8'), options.token !== undefined));
        ws.terminate();
      });
      res.on('error', () => undefined);
    });

    ws.on('error', (err) => {
      if (!settled) failBeforeOpen(new HubUnreachableError(options.hub, err.message));
      else session?.finish({ kind: 'failed', error: new SessionError(undefined, `the connection to the hub failed: ${err.message}`) });
    });

    ws.on('open', () => {
      ws.send(JSON.stringify(options.request));
    });

    ws.on('message', (data: RawData, isBinary: boolean) => {
      const bytes = toBuffer(data);
      if (!session) {
        if (isBinary) {
          failBeforeOpen(new SessionError(undefined, 'the hub sent data before it answered the session request'));
          ws.terminate();
          return;
        }
        const answer = parseAnswer(bytes);
        if (answer.type === 'opened') {
          settled = true;
          clearTimeout(openTimer);
          session = new RemoteSession(ws, answer.ready);
          resolve(session);
        } else {
          failBeforeOpen(answer.error);
          void closeSocket(ws);
        }
        return;
      }
      if (!isBinary) {
        const answer = parseAnswer(bytes);
        session.finish({
          kind: 'failed',
          error:
            answer.type === 'error' ? answer.error : new SessionError(undefined, 'the hub sent a second answer to the session request'),
        });
        return;
      }
      const decoded = receiver.receive(bytes);
      if (!decoded.ok) {
        session.fail(new SessionError(undefined, decoded.reason));
        return;
      }
      session.receive(decoded.frame);
    });

    ws.on('close', (code, reasonBytes) => {
      stopPinging();
      clearTimeout(openTimer);
      const reason = reasonBytes.toString('utf8');
      const error = closedError(code, reason);
      if (session) session.finish({ kind: 'failed', error });
      else failBeforeOpen(error);
    });
  });
}

type Answer = { type: 'opened'; ready: SessionReady } | { type: 'error'; error: CliError };

/** The hub's text answer: SessionReady, or SessionFailed as the error it stands for. */
function parseAnswer(bytes: Buffer): Answer {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return { type: 'error', error: new SessionError(undefined, 'the hub answered the session request with something that is not JSON') };
  }
  const body = (value ?? {}) as Record<string, unknown>;
  if (body.type === 'opened' && typeof body.sessionId === 'string') {
    const window = typeof body.window === 'number' && Number.isInteger(body.window) && body.window > 0 ? body.window : DEFAULT_WINDOW_BYTES;
    return {
      type: 'opened',
      ready: {
        type: 'opened',
        sessionId: body.sessionId,
        window,
        ...(typeof body.container === 'string' ? { container: body.container } : {}),
      },
    };
  }
  const error = (body.error ?? {}) as Record<string, unknown>;
  const message = typeof error.message === 'string' && error.message !== '' ? error.message : 'the hub refused the session';
  if (body.type === 'error' && isFailureCode(error.code))
    return { type: 'error', error: new SessionError(error.code, message, adviceFor(error.code)) };
  return { type: 'error', error: new SessionError(undefined, message) };
}

/** Why the socket closed, when no answer or frame said so first. */
function closedError(code: number, reason: string): CliError {
  const failure = failureForCloseCode(code);
  if (failure !== undefined) {
    return new SessionError(failure, `the hub ended the session: ${reason || failure.replace('_', ' ')}`, adviceFor(failure));
  }
  if (code === 1000 || code === 1001) return new SessionError(undefined, `the hub ended the session${reason ? `: ${reason}` : ''}`);
  return new SessionError(undefined, `lost the connection to the hub${reason ? `: ${reason}` : ` (WebSocket close code ${code})`}`);
}

/** An HTTP answer instead of the upgrade: what that status means for the CLI. */
function refusedUpgrade(status: number, body: string, tokenSent: boolean): CliError {
  let message = '';
  try {
    const parsed = JSON.parse(body) as { error?: { message?: unknown } };
    if (typeof parsed.error?.message === 'string') message = parsed.error.message;
  } catch {
    message = body.trim().slice(0, 200);
  }
  const exitCode: ExitCode =
    status === 401 || status === 403
      ? EXIT_UNAUTHORIZED
      : status === 404
        ? EXIT_NOT_FOUND
        : status === 400
          ? EXIT_INVALID_INPUT
          : EXIT_HUB_ERROR;
  const lines = status === 401 && !tokenSent ? ["use --token or FLOTILLA_TOKEN (the hub's admin key is in <data-dir>/admin.key)"] : [];
  return new CliError(`the hub refused the session (HTTP ${status})${message ? `: ${message}` : ''}`, exitCode, lines);
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

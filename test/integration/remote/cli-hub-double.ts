/**
 * A hub's session endpoint for the CLI's tests, played by the test: a real
 * `ws` server on loopback at `GET /api/v1/devices/:id/sessions` that records
 * what the CLI asked for and answers as a script says (docs/remote-protocol.md §5),
 * plus the one HTTP route `flotilla audit` calls. Frames are the real ones
 * (FrameSender / FrameReceiver), so a test sees exactly what the CLI sent.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';
import { DEFAULT_WINDOW_BYTES } from '../../../shared/remote/flow.js';
import { FRAME, type Frame, type FrameBody, FrameReceiver, FrameSender } from '../../../shared/remote/frames.js';
import { newSessionId, type SessionRequest } from '../../../shared/remote/requests.js';
import { SESSION_FAILURES, type SessionFailureCode } from '../../../shared/remote/websocket.js';

export class DoubleSession {
  readonly frames: Frame[] = [];
  readonly closed: Promise<{ code: number }>;
  private readonly sender: FrameSender;
  private readonly receiver = new FrameReceiver();
  private waiters: { match: (frame: Frame) => boolean; resolve: (frame: Frame) => void }[] = [];
  private listeners: ((frame: Frame) => void)[] = [];

  constructor(
    readonly ws: WebSocket,
    readonly device: string,
    readonly request: SessionRequest,
    readonly authorization: string | undefined,
  ) {
    this.sender = new FrameSender((bytes) => ws.send(bytes, { binary: true }));
    this.closed = new Promise((resolve) => ws.once('close', (code) => resolve({ code })));
    ws.on('message', (data, isBinary) => {
      if (!isBinary) return;
      const decoded = this.receiver.receive(data as Buffer);
      if (!decoded.ok) throw new Error(`the CLI sent a bad frame: ${decoded.reason}`);
      this.frames.push(decoded.frame);
      for (const listener of this.listeners) listener(decoded.frame);
      const waiter = this.waiters.find((w) => w.match(decoded.frame));
      if (waiter) {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        waiter.resolve(decoded.frame);
      }
    });
  }

  opened(window = DEFAULT_WINDOW_BYTES): void {
    this.ws.send(JSON.stringify({ type: 'opened', sessionId: newSessionId(), window }));
  }

  /** SessionFailed, then the close code docs/remote-protocol.md §5 gives it. */
  fail(code: SessionFailureCode, message: string): void {
    this.ws.send(JSON.stringify({ type: 'error', error: { code, message } }));
    this.ws.close(SESSION_FAILURES[code]);
  }

  send(body: FrameBody): void {
    this.sender.send(body);
  }

  /** Sends raw bytes as one binary message (a frame with a chosen seq, say). */
  sendRaw(bytes: Buffer): void {
    this.ws.send(bytes, { binary: true });
  }

  onFrame(listener: (frame: Frame) => void): void {
    this.listeners.push(listener);
    for (const frame of this.frames) listener(frame);
  }

  /** The first frame (received so far or later) that matches. */
  next(match: (frame: Frame) => boolean): Promise<Frame> {
    const seen = this.frames.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.waiters.push({ match, resolve }));
  }

  /** Data the CLI sent on `channel`, joined. */
  dataOn(channel: number): Buffer {
    return Buffer.concat(this.frames.flatMap((f) => (f.type === FRAME.data && f.channel === channel ? [f.data] : [])));
  }
}

export interface HubDoubleOptions {
  /** Answer pings (ws does by default); false plays a hub that stopped answering. */
  autoPong?: boolean;
  /** What `GET /api/v1/audit` answers. */
  audit?: unknown;
}

export class HubDouble {
  readonly sessions: DoubleSession[] = [];
  readonly auditQueries: URLSearchParams[] = [];
  private handler: (session: DoubleSession) => void = (session) => session.opened();

  private constructor(
    private readonly server: Server,
    private readonly wss: WebSocketServer,
  ) {}

  static async start(options: HubDoubleOptions = {}): Promise<HubDouble> {
    const wss = new WebSocketServer({ noServer: true, autoPong: options.autoPong ?? true });
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (req.method === 'GET' && url.pathname === '/api/v1/audit' && options.audit !== undefined) {
        double.auditQueries.push(url.searchParams);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(options.audit));
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'not_found', message: `no route ${url.pathname}` } }));
    });
    const double = new HubDouble(server, wss);
    server.on('upgrade', (req: IncomingMessage, socket, head) => {
      const match = /^\/api\/v1\/devices\/([^/]+)\/sessions$/.exec(new URL(req.url ?? '/', 'http://x').pathname);
      if (!match) {
        socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      const device = decodeURIComponent(match[1]!);
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.once('message', (data) => {
          const session = new DoubleSession(ws, device, JSON.parse(String(data)) as SessionRequest, req.headers.authorization);
          double.sessions.push(session);
          double.handler(session);
        });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return double;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** How the hub answers each new session (by default: opened, then whatever the test does). */
  onSession(handler: (session: DoubleSession) => void): void {
    this.handler = handler;
  }

  async close(): Promise<void> {
    for (const client of this.wss.clients) client.terminate();
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

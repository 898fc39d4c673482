/**
 * A remote-access session from the browser (docs/remote-protocol.md §5): the
 * WebSocket to `/api/v1/devices/ID/sessions`, the SessionRequest as its first
 * message, then one frame per binary message, numbered and checked by the
 * same codec and flow control as the CLI (shared/remote/frames.ts, flow.ts).
 *
 * A browser's WebSocket cannot send an Authorization header, so the key
 * travels as a subprotocol (`flotilla.bearer.<base64url>`) beside
 * `flotilla.session`, which the hub selects.
 *
 * Invariants:
 * - output is granted back to the device only once the terminal has drawn it
 *   (`onOutput`'s `done`), so a device that prints fast cannot fill the page;
 * - input waits for the device's credit; what a typist sends is tiny, so it
 *   queues rather than pausing anything;
 * - `onEnd` is called exactly once, with the first reason the session ended.
 */
import { DEFAULT_WINDOW_BYTES, ReceiveWindow, SendCredit } from '../../../../shared/remote/flow.js';
import { CHANNEL, FRAME, type FrameBody, FrameReceiver, FrameSender, MAX_DATA_BYTES } from '../../../../shared/remote/frames.js';
import type { SessionRequest } from '../../../../shared/remote/requests.js';
import { SESSION_FAILURES, type SessionFailed, type SessionReady } from '../../../../shared/remote/websocket.js';

export type SessionEnd = { kind: 'exit'; code: number } | { kind: 'ended'; reason: string };

export interface SessionHandlers {
  onReady(ready: SessionReady): void;
  /** Output of the command (stdout, and stderr without a TTY); call `done` once it is shown. */
  onOutput(data: Uint8Array, done: () => void): void;
  onEnd(end: SessionEnd): void;
}

const utf8 = new TextEncoder();

/** The protocols a browser offers: the session, and the key when there is one. */
export function sessionProtocols(key: string): string[] {
  return key === '' ? ['flotilla.session'] : ['flotilla.session', `flotilla.bearer.${base64url(key)}`];
}

export function base64url(text: string): string {
  let binary = '';
  for (const byte of utf8.encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function sessionUrl(device: string, where: Location = location): string {
  return `${where.protocol === 'https:' ? 'wss' : 'ws'}://${where.host}/api/v1/devices/${encodeURIComponent(device)}/sessions`;
}

export class BrowserSession {
  private readonly ws: WebSocket;
  private readonly receiver = new FrameReceiver();
  private readonly sender: FrameSender;
  private inbound: ReceiveWindow | undefined;
  private credit: SendCredit | undefined;
  private pending: Uint8Array[] = [];
  private refusal: string | undefined;
  private ended = false;

  constructor(
    device: string,
    request: SessionRequest,
    key: string,
    private readonly handlers: SessionHandlers,
  ) {
    this.ws = new WebSocket(sessionUrl(device), sessionProtocols(key));
    this.ws.binaryType = 'arraybuffer';
    this.sender = new FrameSender((bytes) => {
      if (this.ws.readyState === WebSocket.OPEN) this.ws.send(bytes);
    });
    this.ws.onopen = () => this.ws.send(JSON.stringify(request));
    this.ws.onmessage = (event: MessageEvent) => {
      if (typeof event.data === 'string') this.textMessage(event.data);
      else this.frame(new Uint8Array(event.data as ArrayBuffer));
    };
    this.ws.onclose = (event: CloseEvent) => this.finish({ kind: 'ended', reason: this.closeReason(event) });
  }

  /** Keys typed into the terminal. */
  input(text: string): void {
    if (this.ended || !this.credit) return;
    const bytes = utf8.encode(text);
    for (let at = 0; at < bytes.length; at += MAX_DATA_BYTES) this.pending.push(bytes.subarray(at, at + MAX_DATA_BYTES));
    this.flush();
  }

  resize(rows: number, cols: number): void {
    if (this.credit) this.send({ type: FRAME.resize, channel: CHANNEL.session, rows, cols });
  }

  /** Ends the session from this side; the hub then tells the device. */
  close(): void {
    this.finish({ kind: 'ended', reason: 'closed here' });
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(1000);
  }

  private send(body: FrameBody): void {
    if (!this.ended) this.sender.send(body);
  }

  private textMessage(text: string): void {
    let message: SessionReady | SessionFailed;
    try {
      message = JSON.parse(text) as SessionReady | SessionFailed;
    } catch {
      return;
    }
    if (message.type === 'error') {
      // The close follows at once; its code says little more than this.
      this.refusal = `${message.error.message} (${message.error.code})`;
      return;
    }
    const window = message.window > 0 ? message.window : DEFAULT_WINDOW_BYTES;
    this.inbound = new ReceiveWindow((channel, bytes) => this.send({ type: FRAME.window, channel, bytes }), window);
    this.inbound.open(CHANNEL.stdio);
    this.inbound.open(CHANNEL.stderr);
    this.credit = new SendCredit(window);
    this.credit.open(CHANNEL.stdio);
    this.handlers.onReady(message);
  }

  private frame(bytes: Uint8Array): void {
    if (this.ended) return;
    const decoded = this.receiver.receive(bytes);
    if (!decoded.ok) {
      this.fail(decoded.reason);
      return;
    }
    const frame = decoded.frame;
    switch (frame.type) {
      case FRAME.data: {
        if (!this.inbound?.received(frame.channel, frame.data.length)) {
          this.fail(`the device sent past its flow-control window on channel ${frame.channel}`);
          return;
        }
        const { channel } = frame;
        const length = frame.data.length;
        // A copy: the frame is a view into the message, and the terminal may write it later.
        this.handlers.onOutput(frame.data.slice(), () => this.inbound?.consumed(channel, length));
        return;
      }
      case FRAME.window:
        this.credit?.grant(frame.channel, frame.bytes);
        this.flush();
        return;
      case FRAME.exit:
        this.finish({ kind: 'exit', code: frame.code });
        return;
      case FRAME.close:
        if (frame.channel === CHANNEL.session) this.finish({ kind: 'ended', reason: `the session ended on the device: ${frame.reason}` });
        return;
      default:
        return;
    }
  }

  private flush(): void {
    const credit = this.credit;
    if (!credit) return;
    while (this.pending.length > 0 && credit.available(CHANNEL.stdio) > 0) {
      const data = this.pending.shift()!;
      credit.spend(CHANNEL.stdio, data.length);
      this.send({ type: FRAME.data, channel: CHANNEL.stdio, data });
    }
  }

  private fail(reason: string): void {
    this.finish({ kind: 'ended', reason });
    this.ws.close(1000);
  }

  private finish(end: SessionEnd): void {
    if (this.ended) return;
    this.ended = true;
    this.pending = [];
    this.handlers.onEnd(end);
  }

  private closeReason(event: CloseEvent): string {
    if (this.refusal) return this.refusal;
    const failure = Object.entries(SESSION_FAILURES).find(([, code]) => code === event.code)?.[0];
    if (event.code === 1000) return event.reason || 'the hub closed the session';
    if (failure) return `${event.reason || failure.replace('_', ' ')} (${failure})`;
    return event.code === 1006
      ? 'the connection to the hub was lost'
      : `the connection closed (${event.code}${event.reason ? `: ${event.reason}` : ''})`;
  }
}

/**
 * A port-forward session: every channel N ≥ 1 the opener OPENs is one TCP
 * connection from the device to the session's target (an app container's
 * address, or the device's loopback).
 *
 * Per connection: OPEN N → connect → OPENED N (credit opens both ways) or
 * CLOSE N with why; DATA N both ways within the window; EOF N is a
 * half-close (the socket is half-open-capable, so the other direction goes
 * on); CLOSE N is a reset. A connection's buffers are bounded by its window:
 * the socket is paused once the opener's credit is spent, and incoming bytes
 * are granted back only once the socket has taken them.
 */
import { connect, type Socket } from 'node:net';
import { CHANNEL, FRAME, type Frame } from '../../shared/remote/index.js';
import { OutboundChannel } from '../../shared/remote/outbound-channel.js';
import { Session, type SessionContext, type SessionEnding } from './session.js';

interface Connection {
  socket: Socket;
  /** OPENED was sent: data may flow. */
  opened: boolean;
  output?: OutboundChannel;
  /** The opener closed (CLOSE N) or the connection failed: no frame goes out on it any more. */
  finished: boolean;
  /** Everything the target sent went up, EOF included. */
  drained: boolean;
}

export class ForwardSession extends Session {
  private readonly connections = new Map<number, Connection>();

  constructor(
    context: SessionContext,
    private readonly host: string,
    private readonly port: number,
  ) {
    super(context);
  }

  start(): void {
    // Connections open on the opener's OPEN frames.
  }

  protected onFrame(frame: Frame): void {
    switch (frame.type) {
      case FRAME.open:
        this.open(frame.channel);
        return;
      case FRAME.eof: {
        const connection = this.connections.get(frame.channel);
        if (connection?.opened) connection.socket.end();
        return;
      }
      case FRAME.close: {
        const connection = this.connections.get(frame.channel);
        if (!connection) return;
        connection.finished = true;
        this.forget(frame.channel, connection);
        connection.socket.destroy();
        return;
      }
      default:
        this.log.debug({ frameType: frame.type, channel: frame.channel }, 'frame a port-forward session does not take; ignored');
    }
  }

  protected onData(channel: number, data: Buffer): void {
    const connection = this.connections.get(channel);
    // Data may still arrive for a connection the target just reset: it goes nowhere.
    if (!connection?.opened || connection.socket.destroyed || connection.socket.writableEnded) return;
    connection.socket.write(data, (err) => {
      if (!err) this.window.consumed(channel, data.length);
    });
  }

  protected release(_ending: SessionEnding): void {
    for (const [channel, connection] of this.connections) {
      connection.finished = true;
      connection.output?.stop();
      connection.socket.destroy();
      this.connections.delete(channel);
    }
  }

  private open(channel: number): void {
    if (channel === CHANNEL.session || this.connections.has(channel)) {
      this.send({ type: FRAME.close, channel, reason: `channel ${channel} is not free` });
      return;
    }
    const socket = connect({ host: this.host, port: this.port, allowHalfOpen: true });
    const connection: Connection = { socket, opened: false, finished: false, drained: false };
    this.connections.set(channel, connection);
    socket.setNoDelay(true);
    socket.once('connect', () => {
      if (connection.finished) return;
      connection.opened = true;
      this.credit.open(channel);
      this.window.open(channel);
      this.send({ type: FRAME.opened, channel });
      connection.output = new OutboundChannel({
        source: socket,
        channel,
        credit: this.credit,
        sendData: (ch, data) => this.sendData(ch, data),
        onEnd: () => {
          // The target's FIN, after everything before it: a half-close, unless the socket failed.
          if (!connection.finished && !socket.errored) this.send({ type: FRAME.eof, channel });
          connection.drained = true;
          if (socket.closed) this.forget(channel, connection);
        },
      });
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (connection.finished) return;
      connection.finished = true;
      connection.output?.stop();
      this.send({ type: FRAME.close, channel, reason: connectionError(err, this.host, this.port) });
    });
    // A cleanly closed socket may still hold output waiting for credit: the channel lives until that went up.
    socket.once('close', () => {
      if (connection.finished || connection.drained || !connection.opened) this.forget(channel, connection);
    });
  }

  private forget(channel: number, connection: Connection): void {
    if (this.connections.get(channel) !== connection) return;
    this.connections.delete(channel);
    this.credit.close(channel);
    this.window.close(channel);
  }
}

function connectionError(err: NodeJS.ErrnoException, host: string, port: number): string {
  switch (err.code) {
    case 'ECONNREFUSED':
      return `connection refused by ${host}:${port}`;
    case 'ECONNRESET':
      return 'connection reset';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `${host}:${port} unreachable`;
    case 'ETIMEDOUT':
      return `connecting to ${host}:${port} timed out`;
    default:
      return err.message;
  }
}

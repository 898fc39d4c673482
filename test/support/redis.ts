/**
 * A private Redis server for tests (Debian's redis-server), self-contained in a temp dir and
 * listening on 127.0.0.1 on a free port only. Tests stop, kill and restart it to see hubs ride out
 * a lost Redis, which is why it is not a shared CI service.
 *
 * Nothing is persisted unless `appendonly` is asked for: then every write is in the append-only
 * file before Redis answers it (appendfsync always), so a kill() followed by start() keeps every
 * acknowledged write, as a test that restarts Redis and expects the fleet's sessions back needs.
 *
 * `command()` speaks RESP over a fresh socket, enough for a test to look at keys or flush them
 * without a client library.
 *
 * Invariants: close() stops the server and removes its dir, and is safe to call twice; a process
 * exiting with servers still up kills them and removes their dirs; a process killed outright takes
 * its servers with it, and its dirs go at the next start (owned-dirs.ts).
 */
import { connect } from 'node:net';
import { ownedTempDir } from './owned-dirs.js';
import { freePort } from './ports.js';
import { PrivateServerProcess, type ServerLaunch } from './private-server.js';

export const REDIS_SERVER = '/usr/bin/redis-server';

export interface StartRedisOptions {
  /** Keep every acknowledged write across kill()/stop() and start() (append-only file, fsync always). */
  appendonly?: boolean;
  /** Require this password (`requirepass`): `url` carries it. */
  password?: string;
}

/** A reply: simple and bulk strings, integers, nil, arrays of those. Error replies reject instead. */
export type RespReply = string | number | null | RespReply[];

export interface RedisServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** `redis://127.0.0.1:PORT` (with `:password@` when one is set). */
  readonly url: string;
  readonly dir: string;
  /** The server's log since the last start, the tail of it. */
  readonly output: string;
  readonly running: boolean;
  /** One command on a fresh connection (authenticated when a password is set). */
  command(...args: (string | number)[]): Promise<RespReply>;
  /** SIGTERM (Redis' own shutdown); the dir stays for start(). */
  stop(): Promise<void>;
  /** SIGKILL, as a crash would; the dir stays for start(). */
  kill(): Promise<void>;
  /** Starts it again on the same port and dir after stop() or kill(). */
  start(): Promise<void>;
  /** stop() then start(). */
  restart(): Promise<void>;
  /** Stops it and removes its dir. */
  close(): Promise<void>;
}

export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const server = new PrivateRedis(ownedTempDir('flotilla-redis-'), await freePort(), options);
  try {
    await server.start();
  } catch (err) {
    await server.close();
    throw err;
  }
  return server;
}

class PrivateRedis extends PrivateServerProcess implements RedisServer {
  constructor(
    readonly dir: string,
    port: number,
    private readonly options: StartRedisOptions,
  ) {
    super(dir, port, 'Redis', 'SIGTERM', 10_000);
  }

  get url(): string {
    const auth = this.options.password === undefined ? '' : `:${encodeURIComponent(this.options.password)}@`;
    return `redis://${auth}${this.host}:${this.port}`;
  }

  protected launch(): ServerLaunch {
    const args = [
      '--port',
      String(this.port),
      '--bind',
      this.host,
      '--dir',
      this.dir,
      '--daemonize',
      'no',
      '--save',
      '',
      '--appendonly',
      this.options.appendonly ? 'yes' : 'no',
      '--appendfsync',
      'always',
      '--logfile',
      '',
    ];
    if (this.options.password !== undefined) args.push('--requirepass', this.options.password);
    return { command: REDIS_SERVER, args, readyLine: 'Ready to accept connections', readyTimeoutMs: 20_000 };
  }

  async command(...args: (string | number)[]): Promise<RespReply> {
    const commands = this.options.password === undefined ? [args] : [['AUTH', this.options.password], args];
    const replies = await respExchange(this.port, commands);
    return replies[replies.length - 1]!;
  }
}

/** Sends `commands` pipelined on one connection and resolves with their replies, in order. */
function respExchange(port: number, commands: (string | number)[][]): Promise<RespReply[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no reply from Redis on port ${port} within 10 s`)));
    let buffer = Buffer.alloc(0);
    const replies: RespReply[] = [];
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      try {
        for (;;) {
          const parsed = parseReply(buffer, 0);
          if (!parsed) return;
          buffer = buffer.subarray(parsed.end);
          replies.push(parsed.value);
          if (replies.length === commands.length) {
            socket.end();
            resolve(replies);
            return;
          }
        }
      } catch (err) {
        socket.destroy();
        reject(err);
      }
    });
    socket.write(commands.map(encodeCommand).join(''));
  });
}

function encodeCommand(args: (string | number)[]): string {
  const parts = args.map((a) => {
    const s = String(a);
    return `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
  });
  return `*${args.length}\r\n${parts.join('')}`;
}

/** One reply starting at `at`, or undefined when `buf` does not hold all of it yet; an error reply throws. */
function parseReply(buf: Buffer, at: number): { value: RespReply; end: number } | undefined {
  const lineEnd = buf.indexOf('\r\n', at);
  if (lineEnd < 0) return undefined;
  const type = String.fromCharCode(buf[at]!);
  const line = buf.toString('utf8', at + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case '+':
      return { value: line, end: next };
    case '-':
      throw new Error(`Redis: ${line}`);
    case ':':
      return { value: Number(line), end: next };
    case '$': {
      const length = Number(line);
      if (length < 0) return { value: null, end: next };
      if (buf.length < next + length + 2) return undefined;
      return { value: buf.toString('utf8', next, next + length), end: next + length + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, end: next };
      const items: RespReply[] = [];
      let end = next;
      for (let i = 0; i < count; i++) {
        const item = parseReply(buf, end);
        if (!item) return undefined;
        items.push(item.value);
        end = item.end;
      }
      return { value: items, end };
    }
    default:
      throw new Error(`Redis: unexpected reply type ${JSON.stringify(type)}`);
  }
}

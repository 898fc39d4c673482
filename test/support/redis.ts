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
import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { connect } from 'node:net';
import { dyingWithParent } from './die-with-parent.js';
import { ownedTempDir } from './owned-dirs.js';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

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
  live.add(server);
  try {
    await server.start();
  } catch (err) {
    await server.close();
    throw err;
  }
  return server;
}

const live = new Set<PrivateRedis>();
process.once('exit', () => {
  for (const server of live) server.killNowAndRemove();
});

class PrivateRedis implements RedisServer {
  readonly host = '127.0.0.1' as const;
  output = '';
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    readonly dir: string,
    readonly port: number,
    private readonly options: StartRedisOptions,
  ) {}

  get url(): string {
    const auth = this.options.password === undefined ? '' : `:${encodeURIComponent(this.options.password)}@`;
    return `redis://${auth}${this.host}:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start(): Promise<void> {
    if (this.closed) throw new Error('this Redis server was closed');
    if (this.running) return;
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
    this.output = '';
    const [command, commandArgs] = dyingWithParent(REDIS_SERVER, args);
    const child = spawn(command, commandArgs, { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const collect = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString()).slice(-64 * 1024);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    try {
      await waitFor(
        `Redis on 127.0.0.1:${this.port} to accept connections`,
        () => {
          if (child.exitCode !== null || child.signalCode !== null) throw new Error(`redis-server exited: ${this.output.slice(-2000)}`);
          return this.output.includes('Ready to accept connections');
        },
        { timeoutMs: 20_000, intervalMs: 20 },
      );
    } catch (err) {
      await this.kill();
      throw err;
    }
  }

  async stop(): Promise<void> {
    await this.signal('SIGTERM', 10_000);
  }

  async kill(): Promise<void> {
    await this.signal('SIGKILL', 0);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.stop();
    } finally {
      this.closed = true;
      live.delete(this);
      rmSync(this.dir, { recursive: true, force: true });
    }
  }

  async command(...args: (string | number)[]): Promise<RespReply> {
    const commands = this.options.password === undefined ? [args] : [['AUTH', this.options.password], args];
    const replies = await respExchange(this.port, commands);
    return replies[replies.length - 1]!;
  }

  killNowAndRemove(): void {
    this.child?.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async signal(signal: NodeJS.Signals, graceMs: number): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
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

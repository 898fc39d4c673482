/**
 * A machine behind NAT, made on this one: a network namespace whose only way
 * out is a veth pair to the host in a private /30 (10.231.0.0/16, carved into
 * /30s; one per namespace, chosen at random and checked free). Inside it the
 * loopback is up, so a server bound to 127.0.0.1 there (sshd on :22) answers
 * only processes inside: from the host there is no route to it at all, which
 * is what remote access has to get through.
 *
 * The namespace shares the filesystem, so an agent started in it still
 * reaches the Docker Engine's unix socket; containers stay on the host's
 * bridge network.
 *
 * Invariants: every process started with `spawn` is its own process group and
 * is killed (TERM, then KILL) by close(); close() deletes the host end of the
 * veth (its peer goes with it) and the namespace, and is safe to call twice.
 * Needs root and iproute2.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Runs `ip ARGS…` on the host; throws with ip's own message. */
async function ip(...args: string[]): Promise<string> {
  try {
    const { stdout } = await run('ip', args, { timeout: 10_000 });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`ip ${args.join(' ')}: ${(e.stderr ?? '').trim() || e.message}`);
  }
}

/** Whether this process may make namespaces (root with iproute2): the tests that need one skip, or fail in CI, otherwise. */
export async function netnsProblem(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  try {
    await ip('netns', 'list');
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** A process started inside a namespace, in its own process group. */
export class NetnsProcess {
  output = '';
  readonly exited: Promise<number | null>;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    const collect = (chunk: Buffer) => {
      // Keep the tail: an agent logs for as long as a test runs.
      this.output = (this.output + chunk.toString()).slice(-64 * 1024);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** TERM to the whole group, KILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    const signal = (sig: NodeJS.Signals) => {
      try {
        process.kill(-this.pid, sig);
      } catch {
        // the group is already gone
      }
    };
    signal('SIGTERM');
    const timer = setTimeout(() => signal('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
    signal('SIGKILL'); // whatever the leader left behind in its group
  }
}

export class NetworkNamespace {
  private readonly processes = new Set<NetnsProcess>();
  private closed = false;

  private constructor(
    /** The namespace's name (`ip netns exec NAME …`). */
    readonly name: string,
    /** The host end of the veth pair. */
    readonly hostLink: string,
    /** The host's address on the link: what the namespace reaches the host at. */
    readonly hostAddress: string,
    /** The namespace's own address on the link. */
    readonly address: string,
  ) {}

  /** A new namespace linked to the host; `prefix` (a few letters) makes its name recognisable in `ip netns list`. */
  static async create(prefix = 'fl'): Promise<NetworkNamespace> {
    for (let attempt = 0; ; attempt++) {
      const tag = `${prefix}${randomInt(0, 36 ** 5).toString(36)}`.slice(0, 10);
      const subnet = randomInt(0, 16_384); // 10.231.0.0/16 has 16,384 /30s
      const base = `10.231.${subnet >> 6}.${(subnet & 63) * 4}`;
      const [a, b, c, d] = base.split('.').map(Number) as [number, number, number, number];
      const hostAddress = `${a}.${b}.${c}.${d + 1}`;
      const address = `${a}.${b}.${c}.${d + 2}`;
      const taken = (await ip('-4', '-o', 'addr', 'show', 'to', `${base}/30`)).trim() !== '';
      if (taken) {
        if (attempt > 20) throw new Error('no free /30 in 10.231.0.0/16');
        continue;
      }
      const ns = new NetworkNamespace(tag, `${tag}h`, hostAddress, address);
      try {
        await ns.setUp();
      } catch (err) {
        await ns.close();
        throw err;
      }
      return ns;
    }
  }

  private async setUp(): Promise<void> {
    const inner = `${this.name}d`;
    await ip('netns', 'add', this.name);
    await ip('link', 'add', this.hostLink, 'type', 'veth', 'peer', 'name', inner);
    await ip('link', 'set', inner, 'netns', this.name);
    await ip('addr', 'add', `${this.hostAddress}/30`, 'dev', this.hostLink);
    await ip('link', 'set', this.hostLink, 'up');
    await ip('-n', this.name, 'addr', 'add', `${this.address}/30`, 'dev', inner);
    await ip('-n', this.name, 'link', 'set', inner, 'up');
    await ip('-n', this.name, 'link', 'set', 'lo', 'up');
  }

  /** `command ARGS…` inside the namespace, left running until stop() or close(). */
  spawn(name: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}): NetnsProcess {
    if (this.closed) throw new Error(`namespace ${this.name} is closed`);
    const child = spawn('ip', ['netns', 'exec', this.name, command, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group, so close() reaches its children too
    });
    const proc = new NetnsProcess(`${name} (netns ${this.name})`, child);
    this.processes.add(proc);
    void proc.exited.then(() => this.processes.delete(proc));
    return proc;
  }

  /** `command ARGS…` inside the namespace to completion; never throws on a non-zero exit. */
  async run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}) {
    try {
      const { stdout, stderr } = await run('ip', ['netns', 'exec', this.name, command, ...args], {
        env: { ...process.env, ...options.env },
        timeout: options.timeoutMs ?? 30_000,
        maxBuffer: 16 * 1024 * 1024,
      });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as Error & { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? e.message };
    }
  }

  /** Stops every process started in it, then removes the link and the namespace. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.processes].map((p) => p.stop()));
    await ip('link', 'del', this.hostLink).catch(() => undefined);
    await ip('netns', 'del', this.name).catch(() => undefined);
  }
}

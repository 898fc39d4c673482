/**
 * A private PostgreSQL server for tests (Debian's postgresql package), self-contained in a temp
 * dir: its own cluster, listening on 127.0.0.1 on a free port and on a Unix socket in that dir,
 * never the system's cluster or /var/run/postgresql. Tests stop, kill and restart it to see the hub
 * ride out a lost database, which is why it is not a shared CI service.
 *
 * - The cluster is a copy of one initdb template cached under the OS temp dir per PostgreSQL version
 *   (initdb costs ~0.5 s idle and several seconds on a loaded machine; the copy ~0.07 s). The template
 *   is made in a private dir and renamed into place, so a concurrent test file either sees a whole
 *   template or makes its own and loses the rename.
 * - PostgreSQL refuses to run as root: as root, initdb and the server run as the `postgres` system
 *   user, with the dir chowned to it.
 * - fsync and full_page_writes are off: these clusters live for one test, and a kill -9 of the
 *   server still keeps what it wrote (the page cache survives the process). synchronous_commit stays
 *   on: with it off a commit is acknowledged before its WAL is written, and a kill -9 right after
 *   loses it, which is exactly what tests of acknowledged writes across a crash must not see.
 * - Two roles: the superuser `postgres`, reached only over the Unix socket (trust), for the test's own
 *   setup (adminQuery, createDatabase, pg_terminate_backend); and `flotilla`, the hub's role, with a
 *   random password over TCP (scram-sha-256), so a wrong-password test gets a real refusal.
 *
 * Invariants: kill() kills the postmaster and its backends at once, and stop(), kill() and restart()
 * return only once every one of them is gone; close() stops the server and removes the dir, and is
 * safe to call twice; a process exiting with servers still up kills them and removes their dirs; a
 * process killed outright takes its servers with it (the backends follow their postmaster), and its
 * dirs go at the next start (owned-dirs.ts).
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { ownedTempDir } from './owned-dirs.js';
import { freePort } from './ports.js';
import { PrivateServerProcess, type ServerLaunch } from './private-server.js';
import { waitFor } from './wait.js';

/** The hub's role on every server. */
export const PG_HUB_USER = 'flotilla';
/** The database the server's `url` names; createDatabase makes more. */
export const PG_HUB_DATABASE = 'flotilla';

/**
 * Bump when the template's setup changes (initdb flags, roles), so a template cached by an older
 * checkout is not reused.
 */
const TEMPLATE_FORMAT = 1;

export interface PostgresServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
  /** `postgres://flotilla:…@127.0.0.1:PORT/flotilla`: the hub's role on its database. */
  readonly url: string;
  readonly dataDir: string;
  /** The dir holding the Unix socket the superuser connects through. */
  readonly socketDir: string;
  /** The server's log (stderr) since the last start, the tail of it. */
  readonly output: string;
  readonly running: boolean;
  /** The hub role's URL for another database on this server. */
  urlFor(database: string): string;
  /** A query as the superuser on the `postgres` database, on a connection of its own. */
  adminQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<R[]>;
  /**
   * A new empty database owned by the hub role (a fresh one per test); returns its URL. The cluster's
   * own collation is C; `icuLocale` ('en-US') makes a database that sorts text like most production
   * servers do, by language rules rather than by bytes.
   */
  createDatabase(name?: string, options?: { icuLocale?: string }): Promise<string>;
  /** Fast shutdown (SIGINT: clients are disconnected); the data dir stays for start(). */
  stop(): Promise<void>;
  /** SIGKILL to the server and all its backends, as a crash would; the data dir stays for start(). */
  kill(): Promise<void>;
  /** Starts it again on the same port and data dir after stop() or kill(). */
  start(): Promise<void>;
  /** stop() then start(). */
  restart(): Promise<void>;
  /** Stops it and removes its dir. */
  close(): Promise<void>;
}

export interface StartPostgresOptions {
  /** Extra `-c name=value` settings for the server. */
  settings?: Record<string, string | number>;
}

/** Where Debian's server binaries are: the newest /usr/lib/postgresql/VERSION/bin holding initdb. */
export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a))
    : [];
  if (versions.length === 0) {
    throw new Error(`no PostgreSQL server binaries in ${root}/*/bin (install Debian's postgresql package)`);
  }
  return join(root, versions[0]!, 'bin');
}

/** Starts a new private server and waits until it accepts the hub role's connections. */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  const bin = postgresBinDir();
  const owner = serverUser();
  const template = await ensureTemplate(bin, owner);
  const dir = ownedTempDir('flotilla-pg-');
  const server = new PrivatePostgres(bin, owner, dir, await freePort(), options.settings ?? {});
  try {
    execFileSync('cp', ['-a', template, server.dataDir]);
    mkdirSync(server.socketDir);
    chownTree(dir, owner);
    await server.start();
    await server.adminQuery(`CREATE ROLE ${PG_HUB_USER} LOGIN PASSWORD '${server.password}'`);
    await server.createDatabase(PG_HUB_DATABASE);
  } catch (err) {
    await server.close();
    throw err;
  }
  return server;
}

/** The uid/gid the server runs as: `postgres` when this process is root, else this process's own. */
interface ServerUser {
  name: string;
  uid: number;
  gid: number;
}

function serverUser(): ServerUser {
  const uid = process.getuid?.() ?? 0;
  if (uid !== 0) return { name: String(uid), uid, gid: process.getgid?.() ?? uid };
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  const fields = line?.split(':');
  if (!fields || fields.length < 4) throw new Error("no `postgres` system user (install Debian's postgresql package)");
  return { name: 'postgres', uid: Number(fields[2]), gid: Number(fields[3]) };
}

function chownTree(path: string, owner: ServerUser): void {
  if (process.getuid?.() !== 0) return;
  execFileSync('chown', ['-R', `${owner.uid}:${owner.gid}`, path]);
}

/** The cached initdb output for this binary's version and user; made on first use. */
async function ensureTemplate(bin: string, owner: ServerUser): Promise<string> {
  const version = /\d+(\.\d+)*/.exec(execFileSync(join(bin, 'postgres'), ['--version'], { encoding: 'utf8' }))?.[0] ?? 'unknown';
  const template = join(tmpdir(), `flotilla-pg-template-v${TEMPLATE_FORMAT}-${version}-${owner.name}`);
  if (existsSync(join(template, 'PG_VERSION'))) return template;
  const work = mkdtempSync(`${template}.tmp-`);
  try {
    chownSync(work, owner.uid, owner.gid);
    const data = join(work, 'data');
    await runAs(owner, join(bin, 'initdb'), [
      '-D',
      data,
      '-U',
      'postgres',
      '--auth-local=trust',
      '--auth-host=scram-sha-256',
      '-E',
      'UTF8',
      '--no-locale',
      '--no-sync',
    ]);
    try {
      renameSync(data, template);
    } catch (err) {
      // Another test file made it first: use theirs.
      if (!existsSync(join(template, 'PG_VERSION'))) throw err;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return template;
}

function runAs(owner: ServerUser, command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { uid: owner.uid, gid: owner.gid, stdio: ['ignore', 'pipe', 'pipe'], cwd: tmpdir() });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')} exited with ${code}: ${output.slice(-2000)}`)),
    );
  });
}

class PrivatePostgres extends PrivateServerProcess implements PostgresServer {
  readonly user = PG_HUB_USER;
  readonly database = PG_HUB_DATABASE;
  readonly password = randomBytes(12).toString('hex');
  readonly dataDir: string;
  readonly socketDir: string;

  constructor(
    private readonly bin: string,
    private readonly owner: ServerUser,
    dir: string,
    port: number,
    private readonly settings: Record<string, string | number>,
  ) {
    super(dir, port, 'PostgreSQL', 'SIGINT', 15_000);
    this.dataDir = join(dir, 'data');
    this.socketDir = join(dir, 'sock');
  }

  get url(): string {
    return this.urlFor(this.database);
  }

  urlFor(database: string): string {
    return `postgres://${this.user}:${this.password}@${this.host}:${this.port}/${database}`;
  }

  protected launch(): ServerLaunch {
    const settings: Record<string, string | number> = {
      listen_addresses: this.host,
      fsync: 'off',
      full_page_writes: 'off',
      shared_buffers: '32MB',
      ...this.settings,
    };
    const args = ['-D', this.dataDir, '-p', String(this.port), '-k', this.socketDir];
    for (const [name, value] of Object.entries(settings)) args.push('-c', `${name}=${value}`);
    return {
      command: join(this.bin, 'postgres'),
      args,
      // not in the test runner's process group: a Ctrl-C there is for the runner, not the server
      spawn: { uid: this.owner.uid, gid: this.owner.gid, detached: true },
      readyLine: 'database system is ready to accept connections',
      readyTimeoutMs: 30_000,
    };
  }

  async adminQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    const client = new pg.Client({ host: this.socketDir, port: this.port, user: 'postgres', database: 'postgres' });
    await client.connect();
    try {
      return (await client.query<R>(sql, params)).rows;
    } finally {
      await client.end();
    }
  }

  async createDatabase(name = `test_${randomBytes(6).toString('hex')}`, { icuLocale }: { icuLocale?: string } = {}): Promise<string> {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`not a plain database name: ${JSON.stringify(name)}`);
    if (icuLocale !== undefined && !/^[A-Za-z0-9-]+$/.test(icuLocale)) throw new Error(`not an ICU locale: ${JSON.stringify(icuLocale)}`);
    const collation = icuLocale === undefined ? '' : ` TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE '${icuLocale}' LOCALE 'C'`;
    await this.adminQuery(`CREATE DATABASE ${name} OWNER ${this.user}${collation}`);
    return this.urlFor(name);
  }

  /**
   * A new server on the same data dir refuses to start while old backends still hold the shared
   * memory: wait for every backend the postmaster had as well.
   */
  protected override leftovers(): () => Promise<void> {
    const backends = this.child?.pid === undefined ? [] : childrenOf(this.child.pid);
    return async () => {
      await waitFor('the old PostgreSQL backends to exit', () => backends.every((b) => !alive(b)), { timeoutMs: 10_000, intervalMs: 20 });
    };
  }

  /**
   * SIGKILL to the postmaster and, at the same moment, to every backend: each backend makes itself a
   * session leader (so pg_ctl can signal its children), so no process group holds them all, and a
   * backend left alone would answer a query or two before it notices its postmaster is gone.
   */
  protected override killAll(): void {
    const pid = this.child?.pid;
    if (pid === undefined || !this.running) return;
    for (const target of [...childrenOf(pid), pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  }
}

/** The pids whose parent is `pid` now (Linux /proc). */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid …: comm may hold spaces and parentheses, so read after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // exited while listing
    }
  }
  return children;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

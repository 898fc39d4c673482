import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';
import { startPostgres } from '../support/postgres.js';
import { startRedis } from '../support/redis.js';
import { scratchDir } from '../support/scratch.js';
import { waitFor } from '../support/wait.js';

/** Whether something accepts TCP connections on 127.0.0.1:port now. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function queryAs(url: string, sql: string, params: unknown[] = []): Promise<pg.QueryResultRow[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows;
  } finally {
    await client.end();
  }
}

describe('private PostgreSQL for tests', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('answers the hub role on loopback, keeps committed data across a restart and a kill -9, and removes everything on close', async () => {
    const server = await startPostgres();
    cleanup.add('postgres', () => server.close());
    expect(new URL(server.url).hostname).toBe('127.0.0.1');

    const [who] = await queryAs(server.url, 'SELECT current_user AS user, current_database() AS db, inet_server_port() AS port');
    expect(who).toEqual({ user: 'flotilla', db: 'flotilla', port: server.port });
    await queryAs(server.url, 'CREATE TABLE kept (n integer)');
    await queryAs(server.url, 'INSERT INTO kept VALUES (1)');

    await server.restart();
    await queryAs(server.url, 'INSERT INTO kept VALUES (2)');
    // A connection left open: its backend must be gone when kill() returns, not answer one more query.
    const open = new pg.Client({ connectionString: server.url });
    open.on('error', () => undefined);
    await open.connect();
    const [{ backend }] = (await open.query<{ backend: number }>('SELECT pg_backend_pid() AS backend')).rows as [{ backend: number }];
    await server.kill();
    expect(alive(backend)).toBe(false);
    expect(await listening(server.port)).toBe(false);
    await server.start();
    const rows = await queryAs(server.url, 'SELECT n FROM kept ORDER BY n');
    expect(rows.map((r) => r.n)).toEqual([1, 2]);

    await server.close();
    expect(await listening(server.port)).toBe(false);
    expect(existsSync(server.dataDir)).toBe(false);
  });

  it('refuses a wrong password, and gives each test a database of its own', async () => {
    const server = await startPostgres();
    cleanup.add('postgres', () => server.close());

    const wrong = new URL(server.url);
    wrong.password = 'not-the-password';
    await expect(queryAs(wrong.href, 'SELECT 1')).rejects.toMatchObject({ code: '28P01' });

    const a = await server.createDatabase();
    const b = await server.createDatabase();
    expect(a).not.toBe(b);
    await queryAs(a, 'CREATE TABLE only_in_a (n integer)');
    await expect(queryAs(b, 'SELECT * FROM only_in_a')).rejects.toMatchObject({ code: '42P01' });
    const [owner] = await server.adminQuery<{ owner: string }>(
      'SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1',
      [new URL(a).pathname.slice(1)],
    );
    expect(owner?.owner).toBe('flotilla');
  });
});

describe('private Redis for tests', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('answers RESP on loopback, forgets everything across a restart by default, and removes everything on close', async () => {
    const server = await startRedis();
    cleanup.add('redis', () => server.close());
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);

    expect(await server.command('PING')).toBe('PONG');
    expect(await server.command('SET', 'k', 'v')).toBe('OK');
    expect(await server.command('GET', 'k')).toBe('v');
    expect(await server.command('CONFIG', 'GET', 'bind')).toEqual(['bind', '127.0.0.1']);

    await server.restart();
    expect(await server.command('GET', 'k')).toBeNull();

    await server.close();
    expect(await listening(server.port)).toBe(false);
    expect(existsSync(server.dir)).toBe(false);
  });

  it('keeps every acknowledged write across a kill -9 with appendonly, on the same port', async () => {
    const server = await startRedis({ appendonly: true });
    cleanup.add('redis', () => server.close());
    for (let i = 0; i < 50; i++) await server.command('RPUSH', 'list', i);

    await server.kill();
    expect(await listening(server.port)).toBe(false);
    await server.start();
    expect(await server.command('LLEN', 'list')).toBe(50);
    expect(await server.command('LINDEX', 'list', -1)).toBe('49');
  });

  it('requires the password when one is set, and its url carries it', async () => {
    const server = await startRedis({ password: 's3cret/pw' });
    cleanup.add('redis', () => server.close());
    expect(new URL(server.url).password).toBe('s3cret%2Fpw');
    expect(await server.command('PING')).toBe('PONG');

    const unauthenticated = await unauthenticatedReply(server.port, 'PING');
    expect(unauthenticated).toMatch(/^-NOAUTH/);
  });
});

/** The raw first reply line to one inline command, on a connection that never authenticates. */
function unauthenticatedReply(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(`${command}\r\n`));
    socket.once('data', (chunk: Buffer) => {
      socket.destroy();
      resolve(chunk.toString().split('\r\n')[0]!);
    });
    socket.once('error', reject);
  });
}

describe('private servers of a process killed outright', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('die with it, and the next start removes the dirs it left', { timeout: 60_000 }, async () => {
    const script = join(scratchDir('flotilla-servers-owner-'), 'owner.mts');
    const support = (name: string) => pathToFileURL(join(import.meta.dirname, '../support', name)).href;
    writeFileSync(
      script,
      [
        `import { startPostgres } from '${support('postgres.ts')}';`,
        `import { startRedis } from '${support('redis.ts')}';`,
        'const pg = await startPostgres();',
        'const redis = await startRedis();',
        'console.log(JSON.stringify({ pgPort: pg.port, pgDir: pg.dataDir, redisPort: redis.port, redisDir: redis.dir }));',
        'setInterval(() => undefined, 1000);',
      ].join('\n'),
    );
    const owner = spawn(process.execPath, ['--import', 'tsx', script], {
      cwd: join(import.meta.dirname, '../..'),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cleanup.add('owner process', () => owner.kill('SIGKILL'));
    let output = '';
    owner.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    owner.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const started = await waitFor('the owner to start both servers', () => /^\{.*\}$/m.exec(output)?.[0], { timeoutMs: 30_000 });
    const { pgPort, pgDir, redisPort, redisDir } = JSON.parse(started) as Record<string, string | number>;
    expect(await listening(pgPort as number)).toBe(true);
    expect(await listening(redisPort as number)).toBe(true);

    owner.kill('SIGKILL');
    await waitFor(
      'both servers to die with their owner',
      async () => !(await listening(pgPort as number)) && !(await listening(redisPort as number)),
      {
        timeoutMs: 10_000,
        intervalMs: 100,
      },
    );
    // The killed owner left its dirs (unless another test file's start, running beside this one, swept them already).
    // The next start sweeps them. Tried again while it has not: until its parent reaps it, a killed
    // process is a zombie, which still counts as alive to the sweep.
    await waitFor(
      "the owner's Redis dir removed by a later start",
      async () => {
        await (await startRedis()).close();
        return !existsSync(redisDir as string);
      },
      { timeoutMs: 10_000, intervalMs: 200 },
    );
    await waitFor(
      "the owner's PostgreSQL dir removed by a later start",
      async () => {
        await (await startPostgres()).close();
        return !existsSync(pgDir as string);
      },
      { timeoutMs: 20_000, intervalMs: 200 },
    );
  });
});

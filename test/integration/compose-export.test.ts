/**
 * `flotilla export --format compose` as a developer runs it: a real hub process (SQLite) on
 * loopback, the real `flotilla` executable, and Debian's real `docker-compose` (1.29) reading
 * what it wrote. The app is made by hand with every field the Compose mapping covers, start
 * order and init containers; docker-compose's own normalized `config` is what is checked, so
 * the file is held to what the tool on a bench board accepts, not to what this repository
 * thinks Compose is. `config` reads the file only: no engine is touched.
 *
 * Then the round trip: `flotilla convert` of the exported file gives back the spec, except
 * where the mapping writes two specs one way (args merged into command, a size in Mi and a
 * duration in days in docker-compose's units), and applying it back is one revision.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { AppSpec } from '../../shared/index.js';
import { type HubProcess, type RunResult, runCli, runProcess, startHubProcess, stopAll } from '../support/processes.js';
import { scratchDir } from '../support/scratch.js';

const SLOW = { timeout: 120_000 };
const DOCKER_COMPOSE = '/usr/bin/docker-compose';

let hub: HubProcess;

beforeAll(async () => {
  hub = await startHubProcess();
}, 60_000);

afterAll(async () => {
  await stopAll();
});

function flotilla(args: string[], cwd?: string): Promise<RunResult> {
  return runCli(['--hub', hub.url, ...args], {
    env: { FLOTILLA_SOURCE: '', FLOTILLA_TOKEN: '' },
    timeoutMs: 60_000,
    ...(cwd !== undefined ? { cwd } : {}),
  });
}

/** `docker-compose config` of a file, in an environment of its own (HOSTNAME set, to catch a `$HOSTNAME` read as a variable). */
function composeConfig(dir: string, file?: string): Promise<RunResult> {
  const args = [...(file !== undefined ? ['-f', file] : []), 'config'];
  return runProcess(DOCKER_COMPOSE, args, {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, HOSTNAME: 'bench' },
    timeoutMs: 60_000,
  });
}

/** Every field the Compose mapping covers, on an app with start order and two init containers. */
const SHOP: AppSpec = {
  name: 'shop',
  scheduling: { selectors: { site: 'lab' } },
  spec: {
    initContainers: [
      {
        name: 'migrate',
        image: '127.0.0.1:5000/shop/migrate:1.2',
        command: ['sh', '-c', 'echo migrated by $HOSTNAME > /data/marker'],
        env: [{ name: 'DB_HOST', value: 'db' }],
        volumes: ['shop-data:/data'],
      },
      { name: 'check-firmware', image: '127.0.0.1:5000/shop/fw-check:1', devices: [{ hostPath: '/dev/null', containerPath: '/dev/fw' }] },
    ],
    initPolicy: 'start',
    containers: [
      {
        name: 'db',
        image: '127.0.0.1:5000/shop/db:16',
        entrypoint: ['/bin/sh', '-c'],
        command: ['exec db --listen 5432'],
        env: [
          { name: 'PGDATA', value: '/data/pg' },
          { name: 'POSTGRES_PASSWORD', fromSecret: 'db-password' },
        ],
        volumes: ['shop-data:/data', '/etc/ssl:/etc/ssl:ro'],
        healthcheck: { exec: ['pg_isready', '-q'], interval: '2s', timeout: '1s', retries: 5, startPeriod: '1d' },
        restartPolicy: { name: 'on-failure', maximumRetryCount: 3 },
        resources: { memory: '256Mi', cpus: 0.5 },
        shmSize: '64m',
        networkMode: 'shop-net',
        networkAliases: ['db', 'database'],
        secrets: [{ name: 'db-password' }],
        labels: { 'com.example.tier': 'data' },
      },
      {
        name: 'web',
        image: '127.0.0.1:5000/shop/web:2.0',
        args: ['--port', '8080'],
        user: '1000:1000',
        workDir: '/srv',
        env: [{ name: 'MODE', value: 'no' }],
        ports: ['8080:8080', '127.0.0.1:53:53/udp', '9000'],
        devices: [{ hostPath: '/dev/null', containerPath: '/dev/modem', permissions: 'rw' }],
        tmpfs: ['/tmp', '/run:size=16m'],
        privileged: false,
        capAdd: ['NET_ADMIN'],
        capDrop: ['MKNOD'],
        restartPolicy: { name: 'unless-stopped' },
        healthcheck: { http: 'http://localhost:8080/healthz', interval: '5s' },
        dependsOn: { db: 'healthy' },
        secrets: [{ name: 'tls-key', path: '/etc/web/tls.key' }],
      },
      {
        name: 'exporter',
        image: '127.0.0.1:5000/shop/exporter:1',
        networkMode: 'host',
        restartPolicy: { name: 'always' },
        healthcheck: { tcp: 'localhost:9100' },
        dependsOn: { web: 'started' },
      },
    ],
    update: { strategy: 'download-then-kill', healthTimeout: '90s' },
    rollout: { canary: 1, pauseAfterCanary: true },
  },
};

describe('export --format compose', SLOW, () => {
  const dir = scratchDir('flotilla-compose-export-');

  beforeAll(async () => {
    for (const [name, value] of [
      ['db-password', 's3cret'],
      ['tls-key', 'key'],
    ]) {
      expect((await flotilla(['secret', 'set', name!, '--from-literal', value!])).code).toBe(0);
    }
    writeFileSync(join(dir, 'shop.yaml'), JSON.stringify(SHOP));
    const applied = await flotilla(['apply', '-f', join(dir, 'shop.yaml')]);
    expect(applied).toMatchObject({ code: 0, stdout: 'app/shop created (revision 1)\n' });
  }, 120_000);

  it('writes a file docker-compose accepts, naming every service, image, port, volume and dependency', async () => {
    const exported = await flotilla(['export', 'shop', '--format', 'compose']);
    expect(exported.stderr).toBe('');
    expect(exported.code).toBe(0);
    writeFileSync(join(dir, 'exported.yml'), exported.stdout);

    const config = await composeConfig(dir, 'exported.yml');
    expect(config.stderr).toBe('');
    expect(config.code).toBe(0);
    const normalized = parse(config.stdout) as { services: Record<string, Record<string, unknown>>; [key: string]: unknown };
    expect(Object.keys(normalized.services).sort()).toEqual(['check-firmware', 'db', 'exporter', 'migrate', 'web']);
    const images = Object.fromEntries(Object.entries(normalized.services).map(([name, s]) => [name, s.image]));
    expect(images).toEqual({
      migrate: '127.0.0.1:5000/shop/migrate:1.2',
      'check-firmware': '127.0.0.1:5000/shop/fw-check:1',
      db: '127.0.0.1:5000/shop/db:16',
      web: '127.0.0.1:5000/shop/web:2.0',
      exporter: '127.0.0.1:5000/shop/exporter:1',
    });
    const { web, db, migrate, exporter } = normalized.services as Record<string, Record<string, unknown>>;
    // docker-compose writes published ports in its long form, host-bound ones as written.
    expect(web!.ports).toEqual([{ published: 8080, target: 8080 }, '127.0.0.1:53:53/udp', { target: 9000 }]);
    expect(db!.volumes).toEqual(['shop-data:/data:rw', '/etc/ssl:/etc/ssl:ro']);
    expect(migrate!.volumes).toEqual(['shop-data:/data:rw']);
    expect(normalized.volumes).toEqual({ 'shop-data': {} });
    expect(normalized.networks).toEqual({ 'shop-net': { external: true, name: 'shop-net' } });
    expect(normalized.secrets).toEqual({
      'db-password': { file: join(dir, 'secrets', 'db-password') },
      'tls-key': { file: join(dir, 'secrets', 'tls-key') },
    });

    expect(web!.depends_on).toEqual({
      migrate: { condition: 'service_completed_successfully' },
      'check-firmware': { condition: 'service_completed_successfully' },
      db: { condition: 'service_healthy' },
    });
    expect(exporter!.depends_on).toMatchObject({ web: { condition: 'service_started' } });
    expect(normalized.services['check-firmware']!.depends_on).toEqual({ migrate: { condition: 'service_completed_successfully' } });
    expect(migrate!.restart).toBe('no');
    // Read as the literal "$" the spec means (config writes it escaped again), not as this shell's HOSTNAME.
    expect(migrate!.command).toEqual(['sh', '-c', 'echo migrated by $$HOSTNAME > /data/marker']);
    expect(db!).toMatchObject({
      entrypoint: ['/bin/sh', '-c'],
      command: ['exec db --listen 5432'],
      environment: { PGDATA: '/data/pg' },
      restart: 'on-failure:3',
      mem_limit: '256m',
      cpus: 0.5,
      shm_size: '64m',
      networks: { 'shop-net': { aliases: ['db', 'database'] } },
      labels: { 'com.example.tier': 'data' },
      secrets: [{ source: 'db-password' }],
      healthcheck: { test: ['CMD', 'pg_isready', '-q'], interval: '2s', timeout: '1s', retries: 5, start_period: '24h' },
    });
    expect(web!).toMatchObject({
      command: ['--port', '8080'],
      user: '1000:1000',
      working_dir: '/srv',
      environment: { MODE: 'no' },
      devices: ['/dev/null:/dev/modem:rw'],
      tmpfs: ['/tmp', '/run:size=16m'],
      privileged: false,
      cap_add: ['NET_ADMIN'],
      cap_drop: ['MKNOD'],
      restart: 'unless-stopped',
      secrets: [{ source: 'tls-key', target: '/etc/web/tls.key' }],
      healthcheck: { test: ['CMD-SHELL', 'wget -q -O /dev/null http://localhost:8080/healthz || exit 1'], interval: '5s' },
    });
    expect(exporter!).toMatchObject({
      network_mode: 'host',
      restart: 'always',
      healthcheck: { test: ['CMD-SHELL', 'nc -z localhost 9100 || exit 1'] },
    });
  });

  it('with --dir writes a folder per app that docker-compose runs from without -f', async () => {
    const out = join(dir, 'bench');
    const exported = await flotilla(['export', 'shop', '--format', 'compose', '--dir', out]);
    expect(exported).toEqual({
      code: 0,
      stdout: `app/shop written to ${join(out, 'shop', 'docker-compose.yml')} (revision 1)\n`,
      stderr: '',
    });
    const config = await composeConfig(join(out, 'shop'));
    expect(config.code).toBe(0);
    expect(Object.keys((parse(config.stdout) as { services: object }).services)).toContain('web');
    expect(readFileSync(join(out, 'shop', 'docker-compose.yml'), 'utf8')).toBe(
      (await flotilla(['export', 'shop', '--format', 'compose'])).stdout,
    );
  });

  it('converts back to the spec, but for what the mapping writes one way for two specs', async () => {
    const exported = join(dir, 'round-trip.yml');
    writeFileSync(exported, (await flotilla(['export', 'shop', '--format', 'compose'])).stdout);
    // No --name, no --selector: both come from the file's x-flotilla.
    const converted = await flotilla(['-o', 'json', 'convert', exported]);
    expect(converted.code).toBe(0);
    const expected = structuredClone(SHOP);
    expected.spec.containers[0]!.healthcheck!.startPeriod = '24h'; // docker-compose 1.29 has no days
    expected.spec.containers[0]!.resources!.memory = '256m'; // nor Mi
    const { args, ...web } = expected.spec.containers[1]!;
    expected.spec.containers[1] = { ...web, command: args }; // args are written as the command Docker runs
    expect(JSON.parse(converted.stdout)).toEqual(expected);

    // Applied back, with nothing changed but those: a new revision only because of them.
    const applied = await flotilla(['apply', '-f', exported]);
    expect(applied).toMatchObject({ code: 0, stdout: 'app/shop configured (revision 2)\n' });
    const again = await flotilla(['diff', '-f', exported]);
    expect(again).toMatchObject({ code: 0, stdout: 'app/shop unchanged\n' });
  });

  it('refuses -o json with --format compose, writing nothing', async () => {
    const out = join(dir, 'json');
    const refused = await flotilla(['-o', 'json', 'export', 'shop', '--format', 'compose', '--dir', out]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('a Compose file is YAML: leave out -o json with --format compose');
    expect(existsSync(out)).toBe(false);
  });
});

/**
 * What an operator reads of an app applied from a Compose file, through the real `flotilla`
 * executable against a real hub (Aedes, HTTP API, SQLite) on loopback: `describe app` shows the
 * init step, the dependencies, the aliases and the start order; `rollout history` names each
 * image once; `get apps` counts the app's containers.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Hub, startHub } from '../../broker/hub.js';
import { type RunResult, runCli } from '../support/processes.js';

/** Each CLI run starts node and tsx (about a second on a busy two-core machine). */
const SLOW = { timeout: 60_000 };

/** A shop as a Compose file: an init step, a database with a healthcheck, a web server and a worker that share one image. */
const COMPOSE = `x-flotilla:
  name: shop
  scheduling: { selectors: { site: lab } }
  initPolicy: start
services:
  migrate:
    image: registry.local/shop:3
    command: [migrate, up]
    restart: "no"
    x-flotilla: { init: true }
  db:
    image: registry.local/postgres:16
    healthcheck: { test: [CMD, pg_isready, -q], interval: 2s }
  web:
    image: registry.local/shop:3
    ports: ["8080:8080"]
    networks:
      shop:
        aliases: [shop-web]
    depends_on:
      migrate: { condition: service_completed_successfully }
      db: { condition: service_healthy }
  worker:
    image: registry.local/shop:3
    command: [work]
    depends_on: [db, web]
networks:
  shop:
    external: true
`;

let hub: Hub;
let hubUrl: string;
let dir: string;

function flotilla(args: string[]): Promise<RunResult> {
  return runCli(args, { env: { FLOTILLA_HUB: hubUrl } });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flotilla-describe-app-'));
  hub = await startHub({ dataDir: join(dir, 'hub'), host: '127.0.0.1', mqttPort: 0, wsPort: 0, httpPort: 0, logLevel: 'silent' });
  hubUrl = `http://127.0.0.1:${hub.ports.http}`;
  const file = join(dir, 'docker-compose.yml');
  await writeFile(file, COMPOSE);
  const applied = await flotilla(['apply', '-f', file]);
  expect(applied).toMatchObject({ code: 0, stdout: 'app/shop created (revision 1)\n' });
}, 60_000);

afterAll(async () => {
  await hub?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('an app applied from a Compose file', SLOW, () => {
  it('describe app shows the init step, the init policy, each dependency and alias, and the start order', async () => {
    const described = await flotilla(['describe', 'app', 'shop']);
    expect(described.code).toBe(0);
    const text = described.stdout;
    expect(text).toContain('Init Policy:  start (init containers run for each new revision');
    expect(text).toContain('Start Order:  init migrate → db → web → worker\n');
    expect(text).toContain('Init Containers:\n  migrate:\n    Image:    registry.local/shop:3\n    Command:  migrate up\n');
    expect(text).toContain('  web:\n');
    expect(text).toMatch(/ {4}Network Aliases: +web, shop-web\n/);
    expect(text).toMatch(/ {4}Depends On: +db \(healthy\)\n/);
    expect(text).toMatch(/ {4}Depends On: +db \(started\), web \(started\)\n/);
  });

  it('rollout history names the shared image once', async () => {
    const history = await flotilla(['rollout', 'history', 'shop']);
    expect(history.code).toBe(0);
    expect(history.stdout).toMatch(/\n1\* +\S+ +registry\.local\/postgres:16,registry\.local\/shop:3 +apply +<none>\n$/);
  });

  it('get apps counts the app containers, without the init step', async () => {
    const listed = await flotilla(['get', 'apps']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/\nshop +1 +site=lab +3 +0\/0 +\S+\n$/);
  });
});

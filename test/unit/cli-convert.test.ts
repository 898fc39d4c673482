/**
 * `convert` and `apply -f docker-compose.yml` in-process against a stand-in
 * hub that records each request (as cli-gitops.test.ts): what convert prints,
 * that apply sends the converted spec in one apps.applyAll, and that what
 * Compose cannot say (the devices) is a usage error when missing, with nothing sent.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type CliIO, processIO } from '../../cli/context.js';
import { EXIT_INVALID_INPUT, EXIT_OK } from '../../cli/errors.js';
import { loadYaml } from '../../cli/yaml.js';
import { jsonResponse, runCliInProcess } from '../support/cli-in-process.js';
import { appliedApp } from '../support/fixtures.js';
import { scratchDir } from '../support/scratch.js';

const COMPOSE = `
name: shop
services:
  db:
    image: postgres:16-alpine
    healthcheck:
      test: ["CMD-SHELL", "pg_isready"]
    restart: unless-stopped
  web:
    image: "registry.local/web:\${TAG:-1.0}"
    command: node server.js
    env_file: web.env
    ports: ["8080:80"]
    depends_on:
      db: { condition: service_healthy }
`;

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
  requests: { route: string; body: any }[];
}

function folder(files: Record<string, string>): string {
  const dir = scratchDir('cli-convert-');
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

async function cli(args: string[]): Promise<Captured> {
  const requests: Captured['requests'] = [];
  const fetch: CliIO['fetch'] = async (input, init) => {
    const body = init?.body === undefined ? undefined : JSON.parse(String(init.body));
    requests.push({ route: `${init?.method ?? 'GET'} ${new URL(String(input)).pathname}`, body });
    const items = (body?.specs ?? []).map((spec: { name: string }) => appliedApp(spec.name, 'created'));
    return jsonResponse(200, { items, pruned: [], dryRun: false });
  };
  // The Compose files are real ones in a scratch folder: the real file system reads them.
  return { ...(await runCliInProcess(args, { fetch, io: { readFile: processIO().readFile } })), requests };
}

describe('convert', () => {
  it('prints the spec a Compose file converts to, as YAML apply -f reads, and sends nothing', async () => {
    const dir = folder({ 'docker-compose.yml': COMPOSE, 'web.env': 'LOG_LEVEL=debug\n' });
    const result = await cli(['convert', join(dir, 'docker-compose.yml'), '--selector', 'site=lab', '--device', 'gw-1']);
    // What Compose gives and Flotilla does not is said on stderr, so stdout stays a spec file.
    expect(result.stderr).toBe(
      `note: ${join(dir, 'docker-compose.yml')}: services without restart: web: Compose's default is no, so they stay down after the device reboots or their process exits; give them restart: unless-stopped to keep them running\n` +
        `note: ${join(dir, 'docker-compose.yml')}: services db, web have no network: on Docker's default bridge they cannot reach each other by service name as they do under Compose; give them one network, created on the devices\n`,
    );
    expect(result.code).toBe(EXIT_OK);
    expect(result.requests).toEqual([]);
    const spec = (await loadYaml()).parse(result.stdout);
    expect(spec).toEqual({
      name: 'shop',
      scheduling: { selectors: { site: 'lab' }, devices: ['gw-1'] },
      spec: {
        containers: [
          {
            name: 'db',
            image: 'postgres:16-alpine',
            restartPolicy: { name: 'unless-stopped' },
            healthcheck: { exec: ['/bin/sh', '-c', 'pg_isready'] },
          },
          {
            name: 'web',
            image: 'registry.local/web:1.0',
            command: ['node', 'server.js'],
            env: [{ name: 'LOG_LEVEL', value: 'debug' }],
            ports: ['8080:80'],
            restartPolicy: { name: 'no' },
            dependsOn: { db: 'healthy' },
          },
        ],
      },
    });
  });

  it("-o json prints JSON; --name replaces the file's name", async () => {
    const dir = folder({ 'docker-compose.yml': COMPOSE, 'web.env': '' });
    const result = await cli(['-o', 'json', 'convert', join(dir, 'docker-compose.yml'), '--name', 'shop-b', '--device', 'gw-1']);
    expect(result.code).toBe(EXIT_OK);
    expect(JSON.parse(result.stdout)).toMatchObject({ name: 'shop-b', scheduling: { devices: ['gw-1'] } });
  });

  it('names every field it cannot map in one error, exit 2', async () => {
    const dir = folder({ 'docker-compose.yml': 'services:\n  web:\n    build: .\n    image: web\n    links: [db]\n' });
    const result = await cli(['convert', join(dir, 'docker-compose.yml'), '--name', 'web', '--selector', 'site=lab']);
    expect(result.code).toBe(EXIT_INVALID_INPUT);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^error: 2 problems in the specs/);
    expect(result.stderr).toContain('docker-compose.yml: services.web.build: cannot be mapped');
    expect(result.stderr).toContain('docker-compose.yml: services.web.links: cannot be mapped');
  });

  it('a folder with an override file: one error naming it and the file it overrides, exit 2; --help says so', async () => {
    const dir = folder({
      'docker-compose.yml': COMPOSE.replace('name: shop', 'x-flotilla: { name: shop }'),
      'docker-compose.override.yml': 'services:\n  web:\n    ports: ["9090:80"]\n',
      'web.env': '',
    });
    const result = await cli(['convert', dir, '--selector', 'site=lab']);
    expect(result.code).toBe(EXIT_INVALID_INPUT);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      `error: ${join(dir, 'docker-compose.override.yml')}: a Compose override file, which Flotilla does not merge: merge what the fleet needs of it into docker-compose.yml (docker-compose -f docker-compose.yml -f docker-compose.override.yml config prints the two merged), then leave it out of what flotilla reads (out of the folder, or off the command line)\n`,
    );
    const help = await cli(['convert', '--help']);
    expect(help.stdout).toContain("# named by the file's x-flotilla: {name: shop}");
    expect(help.stdout).toContain('Override files (docker-compose.override.yml) are not merged');
  });
});

describe('apply -f docker-compose.yml', () => {
  it('sends the converted spec in one apps.applyAll', async () => {
    const dir = folder({ 'docker-compose.yml': COMPOSE, 'web.env': 'LOG_LEVEL=debug\n' });
    const result = await cli(['apply', '-f', join(dir, 'docker-compose.yml'), '--name', 'shop-lab', '--selector', 'site=lab']);
    expect(result.stderr).toMatch(/^note: .*services db, web have no network/m);
    expect(result.code).toBe(EXIT_OK);
    expect(result.requests.map((r) => r.route)).toEqual(['POST /api/v1/apply']);
    const [sent] = result.requests[0]!.body.specs;
    expect(result.requests[0]!.body.specs).toHaveLength(1);
    expect(sent).toMatchObject({ name: 'shop-lab', scheduling: { selectors: { site: 'lab' } } });
    expect(sent.spec.containers.map((c: { name: string }) => c.name)).toEqual(['db', 'web']);
    expect(result.stdout).toBe('app/shop-lab created (revision 1)\n');
  });

  it('without --selector, --device or x-flotilla.scheduling is a usage error, and nothing is sent', async () => {
    const dir = folder({ 'docker-compose.yml': COMPOSE, 'web.env': '' });
    const result = await cli(['apply', '-f', join(dir, 'docker-compose.yml')]);
    expect(result.code).toBe(EXIT_INVALID_INPUT);
    expect(result.stderr).toContain('no scheduling: give --selector key=value or --device ID');
    expect(result.requests).toEqual([]);
  });

  it('a folder of two Compose files with --name is refused: each needs its own name:', async () => {
    const dir = folder({
      'a.yml': COMPOSE.replace('web.env', 'a.env'),
      'a.env': '',
      'b.yml': COMPOSE.replace('name: shop', 'name: shop-b').replace('web.env', 'a.env'),
    });
    const result = await cli(['apply', '-f', dir, '--name', 'one', '--device', 'gw-1']);
    expect(result.code).toBe(EXIT_INVALID_INPUT);
    expect(result.stderr).toContain('--name names one app, and the set holds 2 Compose files');
    expect(result.requests).toEqual([]);
    const named = await cli(['apply', '-f', dir, '--device', 'gw-1']);
    expect(named.code).toBe(EXIT_OK);
    expect(named.requests[0]!.body.specs.map((s: { name: string }) => s.name)).toEqual(['shop', 'shop-b']);
  });
});

/**
 * Secrets end to end, with real processes on a real Docker Engine: `flotilla
 * server`, `flotilla agent`, and the CLI setting two secrets, one used as an
 * env value and one as a file. The container sees both values (`docker
 * inspect`, `docker exec cat`); the hub's and the agent's log output (at
 * debug level), `get secrets`, `describe app`, `get apps -o yaml` and the
 * hub's SQLite files (hub.db, hub.db-wal) never hold them in plain bytes.
 * Setting a new value recreates the container with it.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  type AgentProcess,
  type HubProcess,
  type RunResult,
  runCli,
  scratchDir,
  startAgentProcess,
  startHubProcess,
  stopAll,
} from '../support/processes.js';
import { waitFor } from '../support/wait.js';
import { containerIds, docker, inspect, removeContainersAndVolumes } from './support/docker-cli.js';
import { describeDocker } from './support/engine.js';
import { ensureTestImages, type TestImages } from './support/images.js';

const suffix = randomBytes(4).toString('hex');
const app = `e2e-secrets-${suffix}`;
const deviceId = `e2e-secrets-${suffix}`;
const ENV_VALUE = `env-value-${randomBytes(16).toString('hex')}`;
const FILE_VALUE = `file-value-${randomBytes(16).toString('hex')}\nsecond line\n`;
const ROTATED_VALUE = `rotated-${randomBytes(16).toString('hex')}\n`;

/** A file's exact bytes inside the container (`docker exec … cat`, untrimmed). */
async function catInContainer(id: string, path: string): Promise<string> {
  return (await promisify(execFile)('docker', ['exec', id, 'cat', path])).stdout;
}

/** Each value as plain text, its first line alone, and as base64 (how a secret file travels in the desired document). */
function forms(value: string): string[] {
  const firstLine = value.split('\n')[0] ?? value;
  return [value, firstLine, Buffer.from(value).toString('base64')];
}
const ALL_FORMS = [ENV_VALUE, FILE_VALUE, ROTATED_VALUE].flatMap(forms);

function expectNoValue(where: string, text: string | Buffer): void {
  const haystack = typeof text === 'string' ? Buffer.from(text) : text;
  for (const form of ALL_FORMS) expect(haystack.includes(form), `${where} holds a secret value (${form.slice(0, 20)}…)`).toBe(false);
}

describeDocker('secrets: env and file in a real container, never in logs, CLI output or the hub database', () => {
  let images: TestImages;
  let hub: HubProcess;
  let agent: AgentProcess;
  const dir = scratchDir('flotilla-e2e-secrets-');
  const cliOutputs: RunResult[] = [];

  const flotilla = async (...args: string[]): Promise<RunResult> => {
    const out = await runCli(['--hub', hub.url, ...args]);
    cliOutputs.push(out);
    return out;
  };

  const runningContainer = (notId?: string) =>
    waitFor(
      'the app container to run',
      async () => {
        const [id] = await containerIds(`flotilla.app=${app}`);
        return id && id !== notId && (await inspect(id)).State.Running ? id : undefined;
      },
      { timeoutMs: 90_000 },
    );

  beforeAll(async () => {
    images = await ensureTestImages();
    hub = await startHubProcess(undefined, ['--log-level', 'debug']);
    agent = startAgentProcess(
      hub,
      deviceId,
      { site: `lab-${suffix}` },
      { namePrefix: `${deviceId}.`, extraArgs: ['--log-level', 'debug'] },
    );
    await waitFor('the agent to register', async () => {
      const out = await runCli(['--hub', hub.url, 'get', 'devices', '-o', 'json']);
      return out.code === 0 && (JSON.parse(out.stdout) as { items: { id: string }[] }).items.some((d) => d.id === deviceId);
    });
  }, 180_000);

  afterAll(async () => {
    if (process.env.DEBUG_E2E) console.log(hub?.proc.output, agent?.proc.output);
    await stopAll();
    await removeContainersAndVolumes(`flotilla.app=${app}`);
  });

  it('sets secrets from a literal and from a file without echoing them', async () => {
    const set = await flotilla('secret', 'set', 'api-token', '--from-literal', ENV_VALUE);
    expect(set.stderr).toBe('');
    expect(set.stdout).toBe('secret/api-token set\n');
    const file = join(dir, 'tls-key');
    writeFileSync(file, FILE_VALUE, { mode: 0o600 });
    const fromFile = await flotilla('secret', 'set', 'tls-key', '--from-file', file, '-o', 'json');
    expect(fromFile.code).toBe(0);
    expect(JSON.parse(fromFile.stdout)).toEqual({ name: 'tls-key' });
    const neither = await flotilla('secret', 'set', 'x');
    expect(neither.code).toBe(2);
    expect(neither.stderr).toContain('give exactly one of --from-literal VALUE or --from-file PATH');

    const list = await flotilla('get', 'secrets');
    expect(list.stdout).toMatch(/^NAME\s+UPDATED\napi-token\s+\d+s\ntls-key\s+\d+s\n$/);
    const json = JSON.parse((await flotilla('get', 'secrets', '-o', 'json')).stdout) as { items: object[] };
    expect(json.items.map((item) => Object.keys(item).sort())).toEqual([
      ['name', 'updatedAt'],
      ['name', 'updatedAt'],
    ]);
  });

  it('runs the container with the env value and the file, and nothing else shows them', async () => {
    const spec = join(dir, 'app.yaml');
    writeFileSync(
      spec,
      stringify({
        name: app,
        scheduling: { selectors: { site: `lab-${suffix}` } },
        spec: {
          containers: [
            {
              name: 'web',
              image: images.v1,
              env: [{ name: 'API_TOKEN', fromSecret: 'api-token' }],
              secrets: [{ name: 'tls-key' }, { name: 'api-token', path: '/etc/web/token' }],
            },
          ],
        },
      }),
    );
    const applied = await flotilla('apply', '-f', spec);
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);

    const id = await runningContainer();
    expect((await inspect(id)).Config.Env).toContain(`API_TOKEN=${ENV_VALUE}`);
    expect(await catInContainer(id, '/run/secrets/tls-key')).toBe(FILE_VALUE);
    expect(await catInContainer(id, '/etc/web/token')).toBe(ENV_VALUE);
    // 0400, root's (the image runs as root); /run/secrets did not exist in this FROM scratch image.
    expect((await docker('exec', id, 'stat', '-c', '%a %u', '/run/secrets/tls-key', '/etc/web/token')).trim()).toBe('400 0\n400 0');

    const describe = await flotilla('describe', 'app', app);
    expect(describe.stdout).toContain('API_TOKEN (from secret api-token)');
    expect(describe.stdout).toContain('/run/secrets/tls-key (from secret tls-key)');
    expect(describe.stdout).toContain('/etc/web/token (from secret api-token)');
    await flotilla('get', 'apps', '-o', 'yaml');
    await flotilla('get', 'app', app, '-o', 'yaml');
    await flotilla('describe', 'device', deviceId, '-o', 'json');

    // The agent keeps the values (it needs them), only for its own user.
    expect(statSync(join(agent.dataDir, 'agent.db')).mode & 0o777).toBe(0o600);
    expect(statSync(join(hub.dataDir, 'secrets.key')).mode & 0o777).toBe(0o600);
  });

  it('recreates the container when a secret file gets a new value', async () => {
    const [before] = await containerIds(`flotilla.app=${app}`);
    const file = join(dir, 'tls-key-2');
    writeFileSync(file, ROTATED_VALUE, { mode: 0o600 });
    expect((await flotilla('secret', 'set', 'tls-key', '--from-file', file)).code).toBe(0);
    const after = await runningContainer(before);
    expect(await catInContainer(after, '/run/secrets/tls-key')).toBe(ROTATED_VALUE);
    expect((await flotilla('secret', 'delete', 'tls-key')).stderr).toContain('is used by app');
  });

  it('leaves no value in the logs, the CLI output, or the bytes of hub.db and hub.db-wal', () => {
    expect(hub.proc.output).toContain('desired state published');
    expect(agent.proc.output).toContain('new desired state');
    expectNoValue('the hub log', hub.proc.output);
    expectNoValue('the agent log', agent.proc.output);
    for (const out of cliOutputs) expectNoValue(`CLI output ${out.stdout.slice(0, 40)}`, out.stdout + out.stderr);
    for (const name of ['hub.db', 'hub.db-wal']) {
      const path = join(hub.dataDir, name);
      if (name === 'hub.db') expect(existsSync(path)).toBe(true);
      if (existsSync(path)) expectNoValue(name, readFileSync(path));
    }
  });
});

/**
 * Provisioning end to end with the real `flotilla` executable: a real hub
 * (in-process, anonymous access denied, SQLite files in a temp dir), an admin
 * holding the bootstrap key, `token create` → `agent register` → a real
 * `flotilla agent` process reading the config file it wrote. The agent's
 * Docker Engine is a socket where nothing answers: connecting, presence and
 * signed desired state do not need one.
 */
import { chmodSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EXIT_INVALID_INPUT, EXIT_OK, EXIT_UNAUTHORIZED } from '../../cli/errors.js';
import { Cleanup } from '../support/cleanup.js';
import { makeTestCerts, type TestCerts } from '../support/dev-certs.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { type ManagedProcess, type RunResult, runCli, scratchDir, spawnCli, stopAll } from '../support/processes.js';
import { waitFor } from '../support/wait.js';

/** Each CLI run starts node and tsx (about a second on a busy machine); tests make several. */
const SLOW = { timeout: 90_000 };
// An engine that refuses connections: the agent starts and reports it unreachable (a missing socket would stop it at start).
const NO_ENGINE = { DOCKER_HOST: 'tcp://127.0.0.1:1' };

describe('provisioning with the real CLI', SLOW, () => {
  const cleanup = new Cleanup();
  let hub: TestHub;
  let adminKey: string;

  beforeEach(async () => {
    hub = cleanup.add('hub', () => hub.close(), await startTestHub({ config: { allowAnonymous: false } }));
    adminKey = readFileSync(join(hub.dataDir, 'admin.key'), 'utf8').trim();
  });
  afterEach(async () => {
    // Agents (processes) go before the hub they talk to.
    await stopAll();
    await cleanup.run();
  });

  /** `flotilla ARGS…` against the test hub, as the admin unless `token` says otherwise (null: no token). */
  function flotilla(args: string[], { token = adminKey as string | null, hubUrl = hub.httpUrl } = {}): Promise<RunResult> {
    return runCli(args, { env: { FLOTILLA_HUB: hubUrl, FLOTILLA_TOKEN: token ?? '', NO_COLOR: '1', ...NO_ENGINE } });
  }

  async function createToken(...args: string[]): Promise<string> {
    const created = await flotilla(['token', 'create', ...args]);
    expect(created, created.stderr).toMatchObject({ code: EXIT_OK, stderr: '' });
    expect(created.stdout).toMatch(/^flt-reg-[A-Za-z0-9_-]+\n$/);
    return created.stdout.trim();
  }

  function register(token: string, dataDir: string, ...args: string[]): Promise<RunResult> {
    // The registration token is no bearer key: the admin's must not be needed (or sent).
    return flotilla(['agent', 'register', '--hub', hub.httpUrl, '--token', token, '--data-dir', dataDir, ...args], { token: null });
  }

  function startAgent(dataDir: string): ManagedProcess {
    return spawnCli('agent', ['agent', '--data-dir', dataDir, '--resync-interval', '2s', '--log-level', 'info'], {
      ...NO_ENGINE,
      FLOTILLA_TOKEN: '',
    });
  }

  /** Presence straight from the HTTP API: cheaper to poll than a CLI run (a second or more each). */
  async function online(id: string): Promise<boolean | undefined> {
    const res = await fetch(`${hub.httpUrl}/api/v1/devices/${id}`, { headers: { authorization: `Bearer ${adminKey}` } });
    return res.ok ? ((await res.json()) as { online: boolean }).online : undefined;
  }

  async function deviceRow(id: string): Promise<string | undefined> {
    const list = await flotilla(['get', 'devices']);
    expect(list.code, list.stderr).toBe(EXIT_OK);
    return list.stdout.split('\n').find((line) => line.startsWith(`${id} `));
  }

  it('refuses the CLI without a valid token (exit 4, with the way in), and serves the admin key', async () => {
    const anonymous = await flotilla(['get', 'devices'], { token: null });
    expect(anonymous).toEqual({
      code: EXIT_UNAUTHORIZED,
      stdout: '',
      stderr:
        "error: the hub refused the request: no valid token (use --token or FLOTILLA_TOKEN; the hub's admin key is in <data-dir>/admin.key)\n",
    });
    const wrong = await flotilla(['get', 'devices'], { token: 'admin.not-the-key' });
    expect(wrong.code).toBe(EXIT_UNAUTHORIZED);
    expect(wrong.stderr).toMatch(/^error: the hub refused the request: the token is not valid/);
    const admin = await runCli(['--token', adminKey, 'get', 'devices'], { env: { FLOTILLA_HUB: hub.httpUrl, FLOTILLA_TOKEN: '' } });
    expect(admin).toEqual({ code: EXIT_OK, stdout: '', stderr: 'No devices found.\n' });
  });

  it('token create → agent register → a 0600 config → the agent connects with it, online and in sync; no plaintext secret on the hub', async () => {
    const token = await createToken('--label', 'site=roof', '--max-uses', '2', '--expires', '1h');
    const dataDir = scratchDir('flotilla-prov-agent-');
    const registered = await register(token, dataDir, '--device-id', 'pi-1', '--label', 'arch=arm64');
    expect(registered, registered.stderr).toMatchObject({ code: EXIT_OK, stderr: '' });
    const configPath = join(dataDir, 'agent.json');
    expect(registered.stdout).toBe(
      `device/pi-1 registered; config written to ${configPath} (mode 0600)\nstart the agent with: flotilla agent --data-dir ${dataDir}\n`,
    );

    expect(statSync(configPath).mode & 0o777).toBe(0o600);
    const config = JSON.parse(readFileSync(configPath, 'utf8'));
    expect(config).toEqual({
      deviceId: 'pi-1',
      hubUrl: hub.mqttUrl,
      hubHttpUrl: hub.httpUrl,
      secret: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      hubKey: hub.hub.hubKey,
      labels: { arch: 'arm64' },
    });
    // No temp file left beside it.
    expect(readdirSync(dataDir)).toEqual(['agent.json']);

    // The hub keeps a hash only: not in the database, its WAL, or anywhere in the data dir.
    for (const name of readdirSync(hub.dataDir)) {
      const bytes = readFileSync(join(hub.dataDir, name));
      expect(bytes.includes(Buffer.from(config.secret)), name).toBe(false);
      expect(bytes.includes(Buffer.from(token)), name).toBe(false);
    }

    // The device exists at once, with the token's labels; it has not connected yet.
    expect(await deviceRow('pi-1')).toMatch(/^pi-1\s+no\s+.*site=roof/);

    // Anonymous MQTT is denied here, so online means the agent logged in with the file's secret;
    // in sync (REVISION n/n) means it accepted the desired state the hub signed, with the pinned key.
    const agent = startAgent(dataDir);
    await waitFor(`pi-1 online (agent output: ${agent.output.slice(-800)})`, () => online('pi-1'), { timeoutMs: 30_000 });
    const row = await waitFor(
      'pi-1 in sync in flotilla get devices',
      async () => {
        const line = await deviceRow('pi-1');
        const match = line?.match(/^pi-1\s+yes\s+\S+ running\s+(\d+)\/(\d+)\s/);
        return match?.[1] !== undefined && match[1] === match[2] ? line : undefined;
      },
      { timeoutMs: 30_000 },
    );
    expect(row).toMatch(/arch=arm64/);
    expect(agent.output).not.toContain(config.secret);

    const tokens = await flotilla(['get', 'tokens']);
    expect(tokens.stdout).toMatch(/\n\S+\s+site=roof\s+1\/2\s+in (59m|1h)\s+no\s+\d+s\n$/);
    expect(tokens.stdout).not.toContain(token);
  });

  it('refuses a token used up (--max-uses 1) and an expired one, with the reason, exit 4, writing nothing', async () => {
    const once = await createToken('--max-uses', '1');
    expect((await register(once, scratchDir('flotilla-prov-a-'))).code).toBe(EXIT_OK);
    const secondDir = scratchDir('flotilla-prov-b-');
    const second = await register(once, secondDir);
    expect(second).toMatchObject({ code: EXIT_UNAUTHORIZED, stdout: '' });
    expect(second.stderr).toMatch(/^error: the hub refused the registration token: .*used up/);
    expect(readdirSync(secondDir)).toEqual([]);

    const brief = await createToken('--expires', '1s');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const late = await register(brief, secondDir);
    expect(late.code).toBe(EXIT_UNAUTHORIZED);
    expect(late.stderr).toMatch(/^error: the hub refused the registration token: .*expired/);

    const revokedToken = await createToken();
    const id = JSON.parse((await flotilla(['-o', 'json', 'get', 'tokens'])).stdout).items.at(-1).id;
    expect(await flotilla(['token', 'revoke', id])).toMatchObject({ code: EXIT_OK, stdout: `token/${id} revoked\n` });
    const refused = await register(revokedToken, secondDir);
    expect(refused.code).toBe(EXIT_UNAUTHORIZED);
    expect(refused.stderr).toMatch(/revoked/);
    expect(readdirSync(secondDir)).toEqual([]);
  });

  it('device revoke disconnects the agent at once; it stays out, and the id cannot be registered again', async () => {
    const dataDir = scratchDir('flotilla-prov-agent-');
    expect((await register(await createToken(), dataDir, '--device-id', 'pi-2')).code).toBe(EXIT_OK);
    const agent = startAgent(dataDir);
    await waitFor(`pi-2 online (agent output: ${agent.output.slice(-800)})`, () => online('pi-2'), { timeoutMs: 30_000 });

    const revoked = await flotilla(['device', 'revoke', 'pi-2']);
    expect(revoked).toEqual({ code: EXIT_OK, stdout: 'device/pi-2 revoked (disconnected)\n', stderr: '' });
    // The hub closed the connection while answering; presence follows within a second.
    const answeredAt = Date.now();
    await waitFor('pi-2 offline', async () => (await online('pi-2')) === false, { timeoutMs: 5000, intervalMs: 50 });
    expect(Date.now() - answeredAt).toBeLessThan(1000);

    // The agent keeps trying with its secret, and keeps being refused.
    const outputBefore = agent.output.length;
    await waitFor('the agent refused at a reconnect', () => agent.output.slice(outputBefore).includes('Bad username or password'), {
      timeoutMs: 20_000,
    });
    // …and says what it takes, rather than blaming the link.
    expect(agent.output.slice(outputBefore)).toContain('the hub refused this device (revoked, or a wrong id, secret or certificate)');
    expect(await deviceRow('pi-2')).toMatch(/^pi-2\s+revoked\s/);
    const described = await flotilla(['describe', 'device', 'pi-2']);
    expect(described.code, described.stderr).toBe(EXIT_OK);
    expect(described.stdout).toMatch(
      /^Revoked: +\d{4}-\d\d-\d\dT[\d:.]+Z \(its credentials are refused; its containers keep running until the device is wiped\)$/m,
    );
    expect(agent.running).toBe(true);

    const again = await register(await createToken(), scratchDir('flotilla-prov-c-'), '--device-id', 'pi-2');
    expect(again.code).not.toBe(EXIT_OK);
    expect(again.stderr).toMatch(/device "pi-2" was revoked \(.+\) and its id cannot be reused: choose another --device-id/);
  });

  it('roles: a viewer key reads but may not create tokens (403, exit 4); a deleted account is refused', async () => {
    const created = await flotilla(['serviceaccount', 'create', 'dash', '--role', 'viewer']);
    expect(created.code, created.stderr).toBe(EXIT_OK);
    const viewerKey = created.stdout.trim();
    expect(viewerKey).toMatch(/^dash\.[A-Za-z0-9_-]{43}$/);

    expect((await flotilla(['get', 'devices'], { token: viewerKey })).code).toBe(EXIT_OK);
    const forbidden = await flotilla(['token', 'create'], { token: viewerKey });
    expect(forbidden).toMatchObject({ code: EXIT_UNAUTHORIZED, stdout: '' });
    expect(forbidden.stderr).toMatch(/^error: the hub refused the request: .*the token's role may not do this/);

    const accounts = await flotilla(['get', 'serviceaccounts']);
    expect(accounts.stdout).toMatch(/^NAME\s+ROLE\s+AGE\nadmin\s+admin\s+\d+s\ndash\s+viewer\s+\d+s\n$/);
    expect(accounts.stdout).not.toContain(viewerKey);

    expect(await flotilla(['serviceaccount', 'delete', 'dash'])).toMatchObject({ code: EXIT_OK, stdout: 'serviceaccount/dash deleted\n' });
    expect((await flotilla(['get', 'devices'], { token: viewerKey })).code).toBe(EXIT_UNAUTHORIZED);
  });

  it('refuses to overwrite a registered config without --force, and warns when the file is readable by others', async () => {
    const dataDir = scratchDir('flotilla-prov-agent-');
    expect((await register(await createToken(), dataDir, '--device-id', 'pi-3')).code).toBe(EXIT_OK);
    const before = readFileSync(join(dataDir, 'agent.json'), 'utf8');
    const token = await createToken();
    const refused = await register(token, dataDir, '--device-id', 'pi-4');
    expect(refused.code).toBe(EXIT_INVALID_INPUT);
    expect(refused.stderr).toContain('already exists');
    expect(readFileSync(join(dataDir, 'agent.json'), 'utf8')).toBe(before);
    // The refused attempt did not spend the token.
    expect((await register(token, dataDir, '--device-id', 'pi-4', '--force')).code).toBe(EXIT_OK);
    expect(JSON.parse(readFileSync(join(dataDir, 'agent.json'), 'utf8')).deviceId).toBe('pi-4');
    expect(statSync(join(dataDir, 'agent.json')).mode & 0o777).toBe(0o600);

    // A config made readable by others still runs the agent, with a warning.
    const path = join(dataDir, 'agent.json');
    chmodSync(path, 0o644);
    const agent = startAgent(dataDir);
    await waitFor('the mode warning', () => agent.output.includes(`warning: ${path} is readable by others (mode 0644)`));
    await waitFor('pi-4 online', () => online('pi-4'), { timeoutMs: 30_000 });
  });
});

describe('over TLS: https registration pins the CA, the agent connects with mqtts', SLOW, () => {
  let certs: TestCerts;
  const cleanup = new Cleanup();
  let hub: TestHub;
  let adminKey: string;
  let httpsUrl: string;

  beforeAll(async () => {
    certs = await makeTestCerts();
  });
  beforeEach(async () => {
    hub = cleanup.add('hub', () => hub.close(), await startTestHub({ config: { ...certs.hubConfig, allowAnonymous: false } }));
    adminKey = readFileSync(join(hub.dataDir, 'admin.key'), 'utf8').trim();
    httpsUrl = `https://127.0.0.1:${hub.hub.ports.https}`;
  });
  afterEach(async () => {
    await stopAll();
    await cleanup.run();
  });

  const caFile = () => join(certs.dir, 'ca.pem');
  const env = (extra: NodeJS.ProcessEnv = {}) => ({ env: { FLOTILLA_HUB: httpsUrl, FLOTILLA_TOKEN: adminKey, ...NO_ENGINE, ...extra } });

  it('the CLI needs --ca for the dev CA; with it, token create, register and a pinned mqtts agent work', async () => {
    const untrusting = await runCli(['get', 'devices'], env());
    expect(untrusting.code).toBe(1);
    expect(untrusting.stderr).toMatch(/^error: cannot reach the hub at https:\/\/127\.0\.0\.1:\d+: .*certificate/);

    const token = (await runCli(['--ca', caFile(), 'token', 'create'], env())).stdout.trim();
    expect(token).toMatch(/^flt-reg-/);
    const dataDir = scratchDir('flotilla-prov-tls-');
    const registered = await runCli(
      ['agent', 'register', '--token', token, '--device-id', 'pi-tls', '--data-dir', dataDir],
      env({
        FLOTILLA_TOKEN: '',
        FLOTILLA_CA: caFile(),
      }),
    );
    expect(registered.code, registered.stderr).toBe(EXIT_OK);
    const config = JSON.parse(readFileSync(join(dataDir, 'agent.json'), 'utf8'));
    expect(config.hubUrl).toBe(`mqtts://127.0.0.1:${hub.hub.ports.mqtts}`);
    expect(config.ca).toBe(certs.ca);

    // The agent gets its CA from the file (no --ca here): mqtts to the dev CA, pinned.
    const agent = spawnCli('agent', ['agent', '--data-dir', dataDir, '--resync-interval', '2s'], { ...NO_ENGINE, FLOTILLA_CA: '' });
    await waitFor(
      `pi-tls online (agent output: ${agent.output.slice(-800)})`,
      async () => {
        const list = await runCli(['get', 'devices'], env({ FLOTILLA_CA: caFile() }));
        return /\npi-tls\s+yes/.test(list.stdout);
      },
      { timeoutMs: 30_000 },
    );
  });
});

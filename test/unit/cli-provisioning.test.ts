/**
 * The CLI's provisioning and access commands in-process, against a scripted
 * hub (`respond`): what is sent (bearer header, bodies), what is printed, and
 * the exit codes. The real hub is test/integration/cli-provisioning.test.ts.
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { modeWarning, readAgentConfigFile, writeAgentConfigFile } from '../../cli/agent-config-file.js';
import { type AgentFlagValues, type AgentIdentitySettings, agentIdentitySettings } from '../../cli/agent-file-settings.js';
import { mqttUrlFor } from '../../cli/commands/agent-register.js';
import { formatExpiry, tokensTable } from '../../cli/commands/token.js';
import type { CliIO } from '../../cli/context.js';
import { buildProgram, EXIT_HUB_ERROR, EXIT_INVALID_INPUT, EXIT_OK, EXIT_UNAUTHORIZED, loadAllCommands, run } from '../../cli/main.js';
import { runCliInProcess } from '../support/cli-in-process.js';
import { scratchDir } from '../support/scratch.js';

// `agent register` checks the engine's unix socket before it spends a token; these tests need no engine
// (one over TCP is not checked at start: agent/startup-checks.ts; test/integration/agent-startup-errors.test.ts checks the socket).
beforeAll(() => {
  vi.stubEnv('DOCKER_HOST', 'tcp://127.0.0.1:1');
});
afterAll(() => {
  vi.unstubAllEnvs();
});

interface Sent {
  method: string;
  path: string;
  authorization: string | null;
  body: unknown;
}

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
  sent: Sent[];
}

type Respond = (sent: Sent) => Response;

async function cli(args: string[], respond?: Respond, hub = 'http://127.0.0.1:7070'): Promise<Captured> {
  const sent: Sent[] = [];
  const fetch: CliIO['fetch'] = async (input, init) => {
    const headers = new Headers(init?.headers);
    const request: Sent = {
      method: init?.method ?? 'GET',
      path: new URL(String(input)).pathname,
      authorization: headers.get('authorization'),
      body: typeof init?.body === 'string' ? JSON.parse(init.body) : undefined,
    };
    sent.push(request);
    if (!respond) throw new Error('the hub must not be contacted');
    return respond(request);
  };
  return { ...(await runCliInProcess(args, { fetch, hub })), sent };
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

const DEVICES = () => json(200, { items: [] });

describe('--token and refusals', () => {
  it('sends the token as a bearer on every call', async () => {
    const result = await cli(['--token', 'ci.abc', 'get', 'devices'], DEVICES);
    expect(result.code).toBe(EXIT_OK);
    expect(result.sent).toEqual([{ method: 'GET', path: '/api/v1/devices', authorization: 'Bearer ci.abc', body: undefined }]);
  });

  it('sends no authorization header without a token', async () => {
    const result = await cli(['get', 'devices'], DEVICES);
    expect(result.sent[0]?.authorization).toBeNull();
  });

  it('turns 401 without a token into advice, exit 4', async () => {
    const result = await cli(['get', 'devices'], () => json(401, { error: { code: 'unauthorized', message: 'missing bearer token' } }));
    expect(result.code).toBe(EXIT_UNAUTHORIZED);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      "error: the hub refused the request: no valid token (use --token or FLOTILLA_TOKEN; the hub's admin key is in <data-dir>/admin.key)\n",
    );
  });

  it('says the token itself was refused when one was sent', async () => {
    const result = await cli(['--token', 'x.y', 'get', 'devices'], () =>
      json(401, { error: { code: 'unauthorized', message: 'invalid API key' } }),
    );
    expect(result.code).toBe(EXIT_UNAUTHORIZED);
    expect(result.stderr).toContain('error: the hub refused the request: the token is not valid (invalid API key)');
  });

  it('turns 403 into a role problem, exit 4', async () => {
    const result = await cli(['--token', 'dash.k', 'token', 'create'], () =>
      json(403, { error: { code: 'forbidden', message: 'tokens.create needs role admin' } }),
    );
    expect(result.code).toBe(EXIT_UNAUTHORIZED);
    expect(result.stderr).toMatch(/^error: the hub refused the request: tokens.create needs role admin \(the token's role may not do this/);
  });

  it('reads a 401 with no JSON body too', async () => {
    const result = await cli(['get', 'apps'], () => new Response('nope', { status: 401 }));
    expect(result.code).toBe(EXIT_UNAUTHORIZED);
    expect(result.stderr).toContain('no valid token');
  });
});

describe('flotilla token', () => {
  const created = {
    id: 't1',
    token: 'flt-reg-AAAA',
    labels: { site: 'roof', arch: 'arm64' },
    maxUses: 3,
    expiresAt: '2030-01-01T00:00:00.000Z',
  };

  it('sends labels from --label and --labels, --max-uses and --expires in seconds, and prints the token alone', async () => {
    const result = await cli(
      ['token', 'create', '--label', 'site=roof', '--labels', 'arch=arm64,tier=edge', '--max-uses', '3', '--expires', '24h'],
      () => json(200, created),
    );
    expect(result.code).toBe(EXIT_OK);
    expect(result.sent).toEqual([
      {
        method: 'POST',
        path: '/api/v1/tokens',
        authorization: null,
        body: { labels: { site: 'roof', arch: 'arm64', tier: 'edge' }, maxUses: 3, expiresInSeconds: 86_400 },
      },
    ]);
    expect(result).toMatchObject({ stdout: 'flt-reg-AAAA\n', stderr: '' });
  });

  it('sends an empty body when nothing is asked for (the hub has the defaults)', async () => {
    const result = await cli(['token', 'create'], () => json(200, created));
    expect(result.sent[0]?.body).toEqual({});
  });

  it('prints the whole answer with -o json', async () => {
    const result = await cli(['-o', 'json', 'token', 'create'], () => json(200, created));
    expect(JSON.parse(result.stdout)).toEqual(created);
  });

  it('refuses bad input before asking the hub', async () => {
    for (const args of [
      ['token', 'create', '--max-uses', '0'],
      ['token', 'create', '--max-uses', 'lots'],
      ['token', 'create', '--expires', 'soon'],
      ['token', 'create', '--label', 'site=roof', '--labels', 'site=cellar'],
      ['token', 'create', '--labels', 'bad label=x'],
      ['token', 'revoke'],
    ]) {
      const result = await cli(args);
      expect(result.code, args.join(' ')).toBe(EXIT_INVALID_INPUT);
      expect(result.sent).toEqual([]);
    }
  });

  it('revokes by id', async () => {
    const result = await cli(['token', 'revoke', 't1'], () => json(200, { id: 't1', revoked: true }));
    expect(result.sent.map((s) => `${s.method} ${s.path}`)).toEqual(['DELETE /api/v1/tokens/t1']);
    expect(result.stdout).toBe('token/t1 revoked\n');
  });

  it('lists tokens in a table without their values', () => {
    const now = Date.parse('2029-12-31T12:00:00.000Z');
    const table = tokensTable(
      [
        {
          id: 't1',
          labels: { site: 'roof' },
          maxUses: 3,
          uses: 1,
          expiresAt: '2030-01-01T00:00:00.000Z',
          revoked: false,
          createdAt: '2029-12-30T00:00:00.000Z',
        },
        {
          id: 't2',
          labels: {},
          maxUses: 1,
          uses: 1,
          expiresAt: '2029-12-29T00:00:00.000Z',
          revoked: true,
          createdAt: '2029-12-28T00:00:00.000Z',
        },
      ],
      now,
    );
    expect(table).toBe(
      [
        'ID   LABELS      USES   EXPIRES          REVOKED   AGE',
        't1   site=roof   1/3    in 12h           no        1d',
        't2   <none>      1/1    expired 2d ago   yes       3d',
        '',
      ].join('\n'),
    );
    expect(formatExpiry(null, now)).toBe('never');
  });
});

describe('flotilla serviceaccount and device revoke', () => {
  it('creates an account and prints only its key', async () => {
    const result = await cli(['serviceaccount', 'create', 'ci', '--role', 'operator'], () =>
      json(200, { name: 'ci', role: 'operator', key: 'ci.KEY' }),
    );
    expect(result.sent).toEqual([
      { method: 'POST', path: '/api/v1/serviceaccounts', authorization: null, body: { name: 'ci', role: 'operator' } },
    ]);
    expect(result).toMatchObject({ code: EXIT_OK, stdout: 'ci.KEY\n', stderr: '' });
  });

  it('refuses a missing or unknown role and a name with a dot', async () => {
    for (const args of [
      ['serviceaccount', 'create', 'ci'],
      ['serviceaccount', 'create', 'ci', '--role', 'root'],
      ['sa', 'create', 'ci.x', '--role', 'viewer'],
    ]) {
      const result = await cli(args);
      expect(result.code, args.join(' ')).toBe(EXIT_INVALID_INPUT);
      expect(result.sent).toEqual([]);
    }
  });

  it('deletes an account and lists accounts', async () => {
    const deleted = await cli(['serviceaccount', 'delete', 'ci'], () => json(200, { name: 'ci', deleted: true }));
    expect(deleted.sent.map((s) => `${s.method} ${s.path}`)).toEqual(['DELETE /api/v1/serviceaccounts/ci']);
    expect(deleted.stdout).toBe('serviceaccount/ci deleted\n');
    const listed = await cli(['get', 'serviceaccounts'], () =>
      json(200, { items: [{ name: 'admin', role: 'admin', createdAt: new Date().toISOString() }] }),
    );
    expect(listed.stdout).toMatch(/^NAME {4}ROLE {4}AGE\nadmin {3}admin {3}\d+s\n$/);
  });

  it('revokes a device and says whether it was connected', async () => {
    const result = await cli(['device', 'revoke', 'pi-1'], () => json(200, { id: 'pi-1', revoked: true, disconnected: true }));
    expect(result.sent.map((s) => `${s.method} ${s.path}`)).toEqual(['POST /api/v1/devices/pi-1/revoke']);
    expect(result.stdout).toBe('device/pi-1 revoked (disconnected)\n');
  });
});

describe('flotilla agent register', () => {
  const answer = {
    deviceId: 'pi-1',
    secret: 'SECRET-xyz',
    hubKey: '-----BEGIN PUBLIC KEY-----\nAAA\n-----END PUBLIC KEY-----\n',
    mqtt: { port: 1883, tlsPort: 8883 },
  };

  it('posts the token in the body (no bearer), writes the config 0600 and never prints the secret', async () => {
    const dir = scratchDir('flotilla-reg-');
    const result = await cli(
      ['agent', 'register', '--token', 'flt-reg-T', '--device-id', 'pi-1', '--label', 'site=roof', '--data-dir', join(dir, 'agent')],
      () => json(200, answer),
      'http://hub.example:7070',
    );
    expect(result.code, result.stderr).toBe(EXIT_OK);
    expect(result.sent).toEqual([
      {
        method: 'POST',
        path: '/api/v1/register',
        authorization: null,
        body: { token: 'flt-reg-T', deviceId: 'pi-1', labels: { site: 'roof' } },
      },
    ]);
    const path = join(dir, 'agent', 'agent.json');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({
      deviceId: 'pi-1',
      hubUrl: 'mqtt://hub.example:1883',
      hubHttpUrl: 'http://hub.example:7070',
      secret: 'SECRET-xyz',
      hubKey: answer.hubKey,
      labels: { site: 'roof' },
    });
    expect(result.stdout).toBe(
      `device/pi-1 registered; config written to ${path} (mode 0600)\nstart the agent with: flotilla agent --data-dir ${join(dir, 'agent')}\n`,
    );
    expect(result.stdout + result.stderr).not.toContain('SECRET');
  });

  it('refuses to replace an existing config without --force, before spending the token', async () => {
    const dir = scratchDir('flotilla-reg-');
    const config = join(dir, 'agent.json');
    writeFileSync(config, '{}');
    const refused = await cli(['agent', 'register', '--token', 'T', '--config', config], () => json(200, answer), 'http://h:1');
    expect(refused.code).toBe(EXIT_INVALID_INPUT);
    expect(refused.sent).toEqual([]);
    expect(refused.stderr).toContain(`error: ${config} already exists`);
    const forced = await cli(['agent', 'register', '--token', 'T', '--config', config, '--force'], () => json(200, answer), 'http://h:1');
    expect(forced.code, forced.stderr).toBe(EXIT_OK);
    expect(JSON.parse(readFileSync(config, 'utf8')).deviceId).toBe('pi-1');
    expect(statSync(config).mode & 0o777).toBe(0o600);
  });

  it('refuses a config it could not write before spending the token', async () => {
    const dir = scratchDir('flotilla-reg-');
    writeFileSync(join(dir, 'a-file'), '');
    const result = await cli(['agent', 'register', '--token', 'T', '--data-dir', join(dir, 'a-file', 'agent')], () => json(200, answer));
    expect(result.code).toBe(EXIT_INVALID_INPUT);
    expect(result.stderr).toMatch(/^error: the agent's data dir .*a-file\/agent cannot be a directory \(a file is in the way\)/);
    expect(result.sent).toEqual([]);
  });

  it('needs --hub and a token', async () => {
    const dir = scratchDir('flotilla-reg-');
    let stderr = '';
    const io: CliIO = {
      stdout: () => {},
      stderr: (t) => {
        stderr += t;
      },
      readStdin: async () => '',
      readFile: async () => '',
      fetch: async () => {
        throw new Error('must not be called');
      },
    };
    const code = await run(['node', 'flotilla', 'agent', 'register', '--token', 'T', '--data-dir', dir], io);
    expect(code).toBe(EXIT_INVALID_INPUT);
    expect(stderr).toContain('agent register needs the hub: --hub URL');
    const noToken = await cli(['agent', 'register', '--data-dir', dir]);
    expect(noToken.code).toBe(EXIT_INVALID_INPUT);
    expect(noToken.stderr).toContain('needs a registration token');
  });

  it("says the registration token was refused (exit 4), in the hub's words", async () => {
    const dir = scratchDir('flotilla-reg-');
    const result = await cli(['agent', 'register', '--token', 'T', '--data-dir', dir], () =>
      json(401, { error: { code: 'unauthorized', message: 'registration token refused: used up' } }),
    );
    expect(result.code).toBe(EXIT_UNAUTHORIZED);
    expect(result.stderr).toBe('error: the hub refused the registration token: registration token refused: used up\n');
    expect(() => statSync(join(dir, 'agent.json'))).toThrow();
  });

  it('refuses a 200 answer without a secret and writes nothing', async () => {
    const dir = scratchDir('flotilla-reg-');
    const result = await cli(['agent', 'register', '--token', 'T', '--data-dir', dir], () => json(200, { deviceId: 'pi-1' }));
    expect(result.code).toBe(EXIT_HUB_ERROR);
    expect(() => statSync(join(dir, 'agent.json'))).toThrow();
  });

  it('derives the MQTT URL: mqtts with the TLS port when registered over https', () => {
    expect(mqttUrlFor(new URL('https://hub.example:7443/'), { port: 1883, tlsPort: 8883 })).toBe('mqtts://hub.example:8883');
    expect(mqttUrlFor(new URL('http://hub.example:7070/'), { port: 1883, tlsPort: 8883 })).toBe('mqtt://hub.example:1883');
    expect(mqttUrlFor(new URL('https://[::1]:7443/'), { port: 1883 })).toBe('mqtt://[::1]:1883');
  });

  it("takes the MQTT URL the hub announces (a load balancer's in front of replicas), unless it is not an MQTT URL", () => {
    const announced = { port: 17133, tlsPort: 8883, url: 'mqtts://mqtt.fleet.example:8883' };
    expect(mqttUrlFor(new URL('http://10.0.0.7:7070/'), announced)).toBe('mqtts://mqtt.fleet.example:8883');
    expect(mqttUrlFor(new URL('http://10.0.0.7:7070/'), { port: 17133, url: 'https://mqtt.fleet.example' })).toBe('mqtt://10.0.0.7:17133');
  });
});

describe('the agent config file', () => {
  it('is created 0600 even under a permissive umask, and read back', () => {
    const dir = scratchDir('flotilla-cfg-');
    const path = join(dir, 'nested', 'agent.json');
    const previous = process.umask(0o000);
    try {
      writeAgentConfigFile(path, { deviceId: 'pi-1', hubUrl: 'mqtt://h:1883', secret: 's', hubKey: 'k' });
    } finally {
      process.umask(previous);
    }
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readAgentConfigFile(path)).toEqual({
      config: { deviceId: 'pi-1', hubUrl: 'mqtt://h:1883', secret: 's', hubKey: 'k' },
      mode: 0o600,
    });
  });

  it('is absent (undefined) unless required, and invalid content names the key', () => {
    const dir = scratchDir('flotilla-cfg-');
    expect(readAgentConfigFile(join(dir, 'none.json'))).toBeUndefined();
    expect(() => readAgentConfigFile(join(dir, 'none.json'), { required: true })).toThrow(/cannot read the agent config/);
    mkdirSync(join(dir, 'd'));
    const bad = join(dir, 'd', 'agent.json');
    writeFileSync(bad, JSON.stringify({ deviceId: 'pi-1', hubUrl: 'http://wrong' }));
    expect(() => readAgentConfigFile(bad)).toThrow(/invalid agent config/);
  });

  it('warns when group or others may read it', () => {
    expect(modeWarning('/x/agent.json', 0o600)).toBeUndefined();
    expect(modeWarning('/x/agent.json', 0o644)).toBe(
      "warning: /x/agent.json is readable by others (mode 0644) and holds this device's secret: chmod 600 /x/agent.json\n",
    );
  });
});

describe('flotilla agent: the config file and the flags', () => {
  /** Parses `flotilla ARGS…` with the real option definitions, and returns what the agent would be started with. */
  async function settingsFor(args: string[]): Promise<{ code: number; stderr: string; settings?: AgentIdentitySettings }> {
    let stderr = '';
    const io: CliIO = {
      stdout: () => {},
      stderr: (text) => {
        stderr += text;
      },
      readStdin: async () => '',
      readFile: async () => '',
      fetch: async () => {
        throw new Error('must not be called');
      },
    };
    const program = buildProgram(io, await loadAllCommands());
    const agent = program.commands.find((c) => c.name() === 'agent');
    let settings: AgentIdentitySettings | undefined;
    // The real options, parsed by commander; only the start is replaced.
    agent?.action((options: AgentFlagValues & { label: string[] }, command: Command) => {
      settings = agentIdentitySettings({ ...options, labels: Object.fromEntries(options.label.map((l) => l.split('='))) }, command, io);
    });
    try {
      await program.parseAsync(['node', 'flotilla', ...args]);
      return { code: 0, stderr, ...(settings ? { settings } : {}) };
    } catch (err) {
      return { code: (err as { exitCode?: number }).exitCode ?? 1, stderr: stderr + String(err) };
    }
  }

  const file = {
    deviceId: 'pi-1',
    hubUrl: 'mqtts://hub.example:8883',
    secret: 'S',
    hubKey: 'K',
    ca: '-----BEGIN CERTIFICATE-----\nFILE\n-----END CERTIFICATE-----\n',
    labels: { site: 'roof', tier: 'a' },
  };

  it('takes the identity from <data-dir>/agent.json when the flags are left at their defaults', async () => {
    const dir = scratchDir('flotilla-agentcfg-');
    writeAgentConfigFile(join(dir, 'agent.json'), file);
    const { settings, stderr } = await settingsFor(['agent', '--data-dir', dir]);
    expect(stderr).toBe('');
    expect(settings).toEqual({
      deviceId: 'pi-1',
      hubUrl: 'mqtts://hub.example:8883',
      labels: { site: 'roof', tier: 'a' },
      secret: 'S',
      hubKey: 'K',
      ca: file.ca,
      configPath: join(dir, 'agent.json'),
    });
  });

  it('lets flags win: hub URL, labels per key, the CA (global --ca), a client certificate', async () => {
    const dir = scratchDir('flotilla-agentcfg-');
    const config = join(dir, 'elsewhere.json');
    writeAgentConfigFile(config, file);
    const ca = join(dir, 'ca.pem');
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nFLAG\n-----END CERTIFICATE-----\n');
    writeFileSync(join(dir, 'c.pem'), '-----BEGIN CERTIFICATE-----\nC\n');
    writeFileSync(join(dir, 'k.pem'), '-----BEGIN PRIVATE KEY-----\nK\n');
    const { settings } = await settingsFor([
      'agent',
      '--config',
      config,
      '--hub-url',
      'mqtt://other:1883',
      '--label',
      'tier=b',
      '--ca',
      ca,
      '--cert',
      join(dir, 'c.pem'),
      '--key',
      join(dir, 'k.pem'),
    ]);
    expect(settings).toMatchObject({
      deviceId: 'pi-1',
      hubUrl: 'mqtt://other:1883',
      labels: { site: 'roof', tier: 'b' },
      secret: 'S',
      ca: '-----BEGIN CERTIFICATE-----\nFLAG\n-----END CERTIFICATE-----\n',
      tlsCert: '-----BEGIN CERTIFICATE-----\nC\n',
      tlsKey: '-----BEGIN PRIVATE KEY-----\nK\n',
    });
  });

  it('warns when --device-id does not match the secret in the file', async () => {
    const dir = scratchDir('flotilla-agentcfg-');
    writeAgentConfigFile(join(dir, 'agent.json'), file);
    const { settings, stderr } = await settingsFor(['agent', '--data-dir', dir, '--device-id', 'pi-9']);
    expect(settings?.deviceId).toBe('pi-9');
    expect(stderr).toContain(`warning: --device-id pi-9 overrides ${join(dir, 'agent.json')}, whose secret belongs to device pi-1`);
  });

  it('runs without a file as before, but an explicit --config must exist; --cert needs --key', async () => {
    const dir = scratchDir('flotilla-agentcfg-');
    const none = await settingsFor(['agent', '--data-dir', dir, '--device-id', 'pi-1']);
    expect(none.settings).toEqual({ deviceId: 'pi-1', hubUrl: 'mqtt://127.0.0.1:1883', labels: {} });
    const missing = await settingsFor(['agent', '--config', join(dir, 'nope.json')]);
    expect(missing.code).toBe(EXIT_INVALID_INPUT);
    expect(missing.stderr).toContain('cannot read the agent config');
    writeFileSync(join(dir, 'c.pem'), '-----BEGIN CERTIFICATE-----\n');
    const half = await settingsFor(['agent', '--data-dir', dir, '--cert', join(dir, 'c.pem')]);
    expect(half.stderr).toContain('--cert and --key go together');
  });
});

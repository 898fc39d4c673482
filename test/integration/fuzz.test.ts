/**
 * Fuzz: over 10,000 random and malformed payloads (bad JSON, wrong shapes,
 * extreme values, huge strings, deep nesting, prototype keys, binary, empty)
 * published to every Flotilla topic and to junk topics by authenticated
 * clients of every kind — anonymous, a device, a viewer, an operator, an
 * admin — against a real `flotilla server` process with a real agent
 * (in-process, over a MemoryRuntime, registered with its own credentials and
 * pinned hub key). Afterwards the hub process is alive, a device's state
 * report is stored, an app applied over HTTP reaches the agent and runs.
 *
 * The agent's desired and commands topics are written only by the hub on a
 * hub (ACL), so the agent is also fuzzed on its own: agents on a bare broker
 * (broker/mqtt/broker.ts, no hooks: anyone publishes anywhere), one with a
 * pinned hub key and one without, take thousands of payloads on their
 * desired and commands topics, then converge on a well-formed document.
 *
 * Seeded: the seed is printed; `FUZZ_SEED=<seed>` replays the same payloads.
 */
import { generateKeyPairSync, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { type Agent, startAgent } from '../../agent/agent.js';
import { startBroker } from '../../broker/mqtt/broker.js';
import { signDesired } from '../../shared/desired-signature.js';
import type { DesiredState, DeviceView } from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { FUZZ_CHANNELS, type FuzzChannel, fuzzPayload, Rng } from '../support/fuzz-payloads.js';
import { http } from '../support/http.js';
import { LogCapture } from '../support/logs.js';
import { type HubProcess, removeDir, startHubProcess } from '../support/processes.js';
import { scratchDir } from '../support/scratch.js';
import { MemoryRuntime } from '../support/sim/memory-runtime.js';
import { waitFor } from '../support/wait.js';

const ROOT = 'flotilla/v1';
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : randomInt(2 ** 31);
/** Messages in flight per client at once. */
const WINDOW = 16;

interface Message {
  topic: string;
  payload: Buffer;
  qos: 0 | 1;
  retain: boolean;
  kind: string;
}

interface Tally {
  sent: number;
  closedByHub: number;
  kinds: Record<string, number>;
}

/** A client of one role that reconnects whenever the hub closes it (ACL refusals, oversized packets). */
class FuzzClient {
  private client: MqttClient | undefined;
  private closed: Promise<void> = Promise.resolve();
  readonly tally: Tally = { sent: 0, closedByHub: 0, kinds: {} };

  constructor(
    readonly role: string,
    private readonly url: string,
    private readonly options: IClientOptions,
  ) {}

  async connection(): Promise<MqttClient> {
    if (this.client?.connected) return this.client;
    this.client?.end(true);
    // The hub may still be busy with the last refusal: retry a few times.
    for (let attempt = 0; ; attempt++) {
      try {
        const client = await mqtt.connectAsync(this.url, {
          protocolVersion: 4,
          reconnectPeriod: 0,
          connectTimeout: 10_000,
          ...this.options,
        });
        client.on('error', () => undefined);
        this.closed = new Promise((resolve) => client.once('close', () => resolve()));
        this.client = client;
        return client;
      } catch (err) {
        if (attempt >= 5) throw new Error(`${this.role} cannot reconnect: ${(err as Error).message}`);
        await new Promise((resolve) => setTimeout(resolve, 100 * (attempt + 1)));
      }
    }
  }

  /**
   * Publishes every message, `window` at a time; a message the hub answers by
   * closing counts as such (and so do the others in flight then: with
   * refusals expected, send one at a time so each payload reaches the hub).
   */
  async publishAll(messages: Message[], window = WINDOW): Promise<void> {
    const inflight = new Set<Promise<void>>();
    for (const m of messages) {
      while (inflight.size >= window) await Promise.race(inflight);
      const client = await this.connection();
      const closed = this.closed;
      const sent = new Promise<void>((resolve) => client.publish(m.topic, m.payload, { qos: m.qos, retain: m.retain }, () => resolve()));
      const p = Promise.race([sent.then(() => true), closed.then(() => false)]).then((delivered) => {
        if (!delivered) this.tally.closedByHub++;
        inflight.delete(p);
      });
      inflight.add(p);
      this.tally.sent++;
      this.tally.kinds[m.kind] = (this.tally.kinds[m.kind] ?? 0) + 1;
    }
    await Promise.all(inflight);
  }

  async subscribeAll(filters: string[]): Promise<void> {
    for (const filter of filters) {
      const client = await this.connection();
      await Promise.race([client.subscribeAsync(filter, { qos: 1 }).catch(() => undefined), this.closed]);
    }
  }

  close(): void {
    this.client?.end(true);
  }
}

/** `count` messages for `deviceId`'s topics and the API topics of `clientId`, plus junk topics. */
function messagesFor(r: Rng, count: number, topics: () => { topic: string; channel: FuzzChannel }, maxHuge?: number): Message[] {
  return Array.from({ length: count }, () => {
    const { topic, channel } = topics();
    const { kind, payload } = fuzzPayload(r, channel, r.pick(['fz-agent', 'fz-device', 'ghost-1']), maxHuge);
    return { topic, payload, qos: r.chance(0.5) ? 1 : 0, retain: r.chance(0.1), kind };
  });
}

const DEVICE_OUT = ['replies', 'state', 'status', 'events', 'logs', 'metrics'] as const;

/** Topics a client may or may not be allowed: every channel of these devices, these API ids, and junk. */
function anyTopic(r: Rng, deviceIds: string[], apiIds: string[]): { topic: string; channel: FuzzChannel } {
  const channel = r.pick(FUZZ_CHANNELS);
  const roll = r.int(0, 99);
  if (roll < 70) {
    if (channel === 'request' || channel === 'response') return { topic: `${ROOT}/api/${r.pick(apiIds)}/${channel}`, channel };
    return { topic: `${ROOT}/devices/${r.pick(deviceIds)}/${channel}`, channel };
  }
  const junk = [
    `junk/${r.int(0, 99)}`,
    `${ROOT}/devices`,
    `${ROOT}/devices/${r.pick(deviceIds)}/${channel}/extra`,
    `${ROOT}/devices/UPPER_case!/${channel}`,
    `${ROOT}/api//request`,
    `${ROOT}/devices/${'a'.repeat(200)}/state`,
    '$SYS/broker/fake',
    '$flotilla/dropped',
    `/${ROOT}/devices/x/state`,
    `${ROOT}/devices/💥/state`,
    Array.from({ length: 15 }, (_, i) => `l${i}`).join('/'),
    Array.from({ length: 20 }, (_, i) => `l${i}`).join('/'),
    `t/${'z'.repeat(r.pick([10, 600, 5000]))}`,
  ];
  return { topic: r.pick(junk), channel };
}

describe('fuzz', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run(), 60_000);

  it(`takes over 10,000 malformed payloads from every role on every topic and keeps serving (seed ${SEED})`, {
    timeout: 180_000,
  }, async () => {
    console.info(`fuzz seed ${SEED} (replay: FUZZ_SEED=${SEED})`);
    const r = new Rng(SEED);
    const started = performance.now();
    // Every client connects from 127.0.0.1: no per-address limit (broker-limits.test.ts covers it).
    const hub: HubProcess = await startHubProcess(undefined, ['--max-connect-rate-per-address', '0', '--log-level', 'warn']);
    cleanup.add('hub data', () => removeDir(hub.dataDir));
    cleanup.add('hub', () => hub.proc.stop());
    const adminKey = readFileSync(join(hub.dataDir, 'admin.key'), 'utf8').trim();
    const asAdmin = { authorization: `Bearer ${adminKey}` };
    const api = async (method: string, path: string, body?: unknown) => {
      const res = await http(hub.url, method, path, body, asAdmin);
      if (res.status >= 300) throw new Error(`${method} ${path}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    };
    const account = async (name: string, role: string) => (await api('POST', '/api/v1/serviceaccounts', { name, role })).key as string;
    const register = async (deviceId: string) => {
      const { token } = await api('POST', '/api/v1/tokens', { maxUses: 1 });
      return (await api('POST', '/api/v1/register', { token, deviceId })) as { deviceId: string; secret: string; hubKey: string };
    };
    const [viewerKey, operatorKey, adminAccountKey, agentCreds, deviceCreds] = [
      await account('fz-viewer', 'viewer'),
      await account('fz-operator', 'operator'),
      await account('fz-admin', 'admin'),
      await register('fz-agent'),
      await register('fz-device'),
    ];

    const phase = (name: string) => console.info(`fuzz phase ${name}: ${Math.round(performance.now() - started)} ms`);
    phase('accounts');
    const agentDir = scratchDir('flotilla-fuzz-agent-');
    const runtime = new MemoryRuntime({ deviceId: 'fz-agent' });
    cleanup.add('runtime', () => runtime.close());
    const agent: Agent = await startAgent(
      {
        deviceId: 'fz-agent',
        hubUrl: hub.mqttUrl,
        dataDir: agentDir,
        secret: agentCreds.secret,
        hubKey: agentCreds.hubKey,
        logLevel: 'silent',
        resyncIntervalMs: 1_000,
        stateIntervalMs: 500,
        outboxPath: 'memory',
      },
      { runtime },
    );
    cleanup.add('agent', () => agent.close());
    await waitFor('the agent online', () => agent.link.connected, { timeoutMs: 10_000 });

    phase('agent');
    const url = hub.mqttUrl;
    const devices = ['fz-agent', 'fz-device', 'ghost-1'];
    const apiIds = ['fz-operator', 'fz-admin', 'fz-operator.x', 'anon-1', 'other'];
    const clients = {
      anonymous: new FuzzClient('anonymous', url, { clientId: 'anon-1' }),
      device: new FuzzClient('device', url, { clientId: 'fz-device', username: 'fz-device', password: deviceCreds.secret }),
      viewer: new FuzzClient('viewer', url, { clientId: 'fz-viewer', username: 'fz-viewer', password: viewerKey }),
      operator: new FuzzClient('operator', url, { clientId: 'fz-operator', username: 'fz-operator', password: operatorKey }),
      admin: new FuzzClient('admin', url, { clientId: 'fz-admin', username: 'fz-admin', password: adminAccountKey }),
    };
    for (const client of Object.values(clients)) cleanup.add(`${client.role} client`, () => client.close());

    // Subscriptions first, allowed or not, some malformed (a 20-level filter closes the connection).
    const filters = [
      '#',
      `${ROOT}/devices/+/desired`,
      `${ROOT}/devices/fz-agent/commands`,
      '$SYS/#',
      '$flotilla/#',
      '+/+/+/+/+',
      `${'a/'.repeat(19)}a`,
    ];
    await Promise.all(Object.values(clients).map((c) => c.subscribeAll(filters)));

    phase('subscribed');
    // What each role is allowed gets most of the payloads (one connection carries them); what it is
    // refused closes the connection each time, so it gets fewer.
    const own = (deviceId: string) => () => {
      const channel = r.pick(DEVICE_OUT);
      return { topic: `${ROOT}/devices/${deviceId}/${channel}`, channel };
    };
    const ownRequests = (clientId: string) => () => ({ topic: `${ROOT}/api/${clientId}/request`, channel: 'request' as const });
    const anything = () => anyTopic(r, devices, apiIds);
    // Anonymous clients may publish anywhere (but $SYS and $flotilla): Flotilla's topics, windowed.
    const flotillaTopic = () => {
      const channel = r.pick(FUZZ_CHANNELS);
      const topic =
        channel === 'request' || channel === 'response'
          ? `${ROOT}/api/${r.pick(apiIds)}/${channel}`
          : `${ROOT}/devices/${r.pick(devices)}/${channel}`;
      return { topic, channel };
    };
    const plan: { client: FuzzClient; allowed: Message[]; mixed: Message[] }[] = [
      { client: clients.anonymous, allowed: messagesFor(r, 2_800, flotillaTopic), mixed: messagesFor(r, 300, anything) },
      { client: clients.device, allowed: messagesFor(r, 2_400, own('fz-device')), mixed: messagesFor(r, 100, anything) },
      { client: clients.viewer, allowed: [], mixed: messagesFor(r, 150, anything) },
      { client: clients.operator, allowed: messagesFor(r, 2_000, ownRequests('fz-operator')), mixed: messagesFor(r, 100, anything) },
      { client: clients.admin, allowed: messagesFor(r, 2_100, ownRequests('fz-admin')), mixed: messagesFor(r, 150, anything) },
    ];
    // A packet over --max-packet-size (1 MiB) from each: the hub closes those connections.
    for (const { mixed } of plan) {
      const payload = Buffer.alloc(1_200_000, 0x7b);
      mixed.splice(r.int(0, mixed.length), 0, {
        topic: `${ROOT}/devices/fz-device/logs`,
        payload,
        qos: 1,
        retain: false,
        kind: 'over-packet-cap',
      });
    }
    phase('generated');
    const total = plan.reduce((n, p) => n + p.allowed.length + p.mixed.length, 0);
    expect(total).toBeGreaterThanOrEqual(10_000);

    // A will of junk for each kind of client that may leave one, fired by cutting the socket.
    for (const [role, options] of [
      ['anonymous', { clientId: 'anon-will' }],
      ['device', { clientId: 'fz-device', username: 'fz-device', password: deviceCreds.secret }],
    ] as const) {
      const w = await mqtt
        .connectAsync(url, {
          protocolVersion: 4,
          reconnectPeriod: 0,
          ...options,
          // A will's payload has a two-byte length in CONNECT: MQTT.js refuses to encode one over 64 KiB, so a longer one is cut.
          will: {
            topic: `${ROOT}/devices/fz-device/status`,
            payload: fuzzPayload(r, 'status', 'fz-device').payload.subarray(0, 65_535),
            qos: 1,
            retain: true,
          },
        })
        .catch((err: Error) => err);
      // The hub may refuse a CONNECT whose will it will not hold (its size, say): what matters is that it keeps serving, checked below.
      if (w instanceof Error) {
        console.info(`fuzz: the ${role} connection with a junk will was refused: ${w.message}`);
        continue;
      }
      w.on('error', () => undefined);
      w.stream.destroy();
    }

    phase('wills');
    const took: Record<string, number> = {};
    await Promise.all(
      plan.map(async ({ client, allowed, mixed }) => {
        const t0 = performance.now();
        await client.publishAll(allowed);
        took[`${client.role}-allowed`] = Math.round(performance.now() - t0);
        await client.publishAll(mixed, 1);
        took[client.role] = Math.round(performance.now() - t0);
      }),
    );
    console.info(`ms per role: ${JSON.stringify(took)}`);
    const fuzzedMs = performance.now() - started;
    const summary = Object.values(clients).map(
      (c) => `${c.role}: ${c.tally.sent} sent, ${c.tally.closedByHub} cut off by a closed connection`,
    );
    const kinds: Record<string, number> = {};
    for (const c of Object.values(clients)) for (const [k, n] of Object.entries(c.tally.kinds)) kinds[k] = (kinds[k] ?? 0) + n;
    console.info(
      `fuzz seed ${SEED}: ${total} payloads in ${Math.round(fuzzedMs)} ms; ${summary.join('; ')}; kinds ${JSON.stringify(kinds)}`,
    );
    for (const c of Object.values(clients)) c.close();

    // The hub is up and serves normal traffic; what it logged as errors is printed (a crash would be fatal).
    expect(hub.proc.running, hub.proc.output.slice(-4000)).toBe(true);
    const logged: Record<string, number> = {};
    for (const line of hub.proc.output.split('\n')) {
      if (!line.startsWith('{')) continue;
      const { level, msg } = JSON.parse(line) as { level: number; msg: string };
      logged[`${level} ${msg}`] = (logged[`${level} ${msg}`] ?? 0) + 1;
    }
    console.info(`hub log lines by level and message: ${JSON.stringify(logged, null, 1)}`);
    expect(Object.keys(logged).filter((key) => key.startsWith('60 '))).toEqual([]);
    const marker = `fuzz-after-${SEED}`;
    const device = await mqtt.connectAsync(url, {
      protocolVersion: 4,
      reconnectPeriod: 0,
      clientId: 'fz-device',
      username: 'fz-device',
      password: deviceCreds.secret,
    });
    cleanup.add('device', () => device.endAsync(true));
    const state = {
      deviceId: 'fz-device',
      observedRevision: 0,
      reportedAt: new Date().toISOString(),
      host: { hostname: marker, os: 'linux', arch: 'x64', agentVersion: '0.1.0' },
      labels: { role: 'fuzzed' },
      apps: [],
    };
    await device.publishAsync(`${ROOT}/devices/fz-device/state`, JSON.stringify(state), { qos: 1, retain: true });
    await waitFor(
      'the state report stored',
      async () => ((await api('GET', '/api/v1/devices/fz-device')) as DeviceView).host?.hostname === marker,
      {
        timeoutMs: 10_000,
      },
    );

    phase('state stored');
    await api('POST', '/api/v1/apps', {
      name: 'fuzzcheck',
      scheduling: { devices: ['fz-agent'] },
      // No health gate to sit out: running is running.
      spec: { containers: [{ name: 'server', image: 'registry.local/fuzzcheck:1' }], update: { minReadySeconds: 0 } },
    });
    await waitFor(
      'the agent running the app applied after the fuzz',
      async () => {
        const view = (await api('GET', '/api/v1/devices/fz-agent')) as DeviceView;
        return view.apps.some((a) => a.name === 'fuzzcheck' && a.phase === 'running');
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    expect(runtime.containers().filter((c) => c.image === 'registry.local/fuzzcheck:1' && c.state === 'running')).toHaveLength(1);
    expect(agent.link.connected).toBe(true);
    expect(hub.proc.running, hub.proc.output.slice(-4000)).toBe(true);
  });

  it(`an agent on a bare broker takes thousands of malformed desired documents and commands, then converges (seed ${SEED})`, {
    timeout: 120_000,
  }, async () => {
    const r = new Rng(SEED ^ 0x5eed);
    const broker = await startBroker({ host: '127.0.0.1', mqttPort: 0, wsPort: 0, logger: pino({ level: 'silent' }) });
    const agentLogs = new LogCapture(process.env.FUZZ_DEBUG ? 'debug' : 'warn');
    cleanup.add('broker', () => broker.close());
    const url = `mqtt://127.0.0.1:${broker.mqttPort}`;
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const hubKey = publicKey.export({ type: 'spki', format: 'pem' }).toString();

    const agents: { id: string; agent: Agent; runtime: MemoryRuntime; signed: boolean }[] = [];
    for (const [id, signed] of [
      ['fz-pinned', true],
      ['fz-unpinned', false],
    ] as const) {
      const dir = scratchDir('flotilla-fuzz-agent-');
      const runtime = new MemoryRuntime({ deviceId: id });
      cleanup.add(`${id} runtime`, () => runtime.close());
      const agent = await startAgent(
        {
          deviceId: id,
          hubUrl: url,
          dataDir: dir,
          logLevel: 'silent',
          resyncIntervalMs: 1_000,
          outboxPath: 'memory',
          ...(signed ? { hubKey } : {}),
        },
        { runtime, logger: agentLogs.logger },
      );
      cleanup.add(`${id} agent`, () => agent.close());
      agents.push({ id, agent, runtime, signed });
    }
    await waitFor('both agents connected', () => agents.every((a) => a.agent.link.connected), { timeoutMs: 10_000 });

    const hub = new FuzzClient('hub', url, { clientId: 'fz-fake-hub' });
    cleanup.add('fake hub', () => hub.close());
    const messages: Message[] = [];
    for (let i = 0; i < 4_000; i++) {
      const { id } = r.pick(agents);
      const channel = r.chance(0.75) ? 'desired' : 'commands';
      const { kind, payload } = fuzzPayload(r, channel, r.chance(0.8) ? id : 'someone-else');
      // The hub retains desired documents: so do most of these, as a reconnecting agent would get them.
      messages.push({
        topic: `${ROOT}/devices/${id}/${channel}`,
        payload,
        qos: r.chance(0.5) ? 1 : 0,
        retain: channel === 'desired' && r.chance(0.7),
        kind,
      });
    }
    await hub.publishAll(messages);
    console.info(`agent fuzz seed ${SEED}: ${hub.tally.sent} payloads, kinds ${JSON.stringify(hub.tally.kinds)}`);
    expect(hub.tally.closedByHub).toBe(0);

    // Both still converge on a well-formed document (signed for the pinned one). The unpinned agent
    // trusts whatever the broker hands it, so a fuzzed document with a high revision may have been
    // applied: the last one has the highest revision the schema allows (2^53 - 1).

    const client = await hub.connection();
    for (const { id, signed } of agents) {
      const desired: DesiredState = {
        deviceId: id,
        revision: Number.MAX_SAFE_INTEGER,
        issuedAt: new Date().toISOString(),
        apps: [{ name: 'fuzzcheck', revision: 1, containers: [{ name: 'server', image: 'registry.local/fuzzcheck:1' }] }],
      };
      const doc = signed ? signDesired(desired, privateKey) : desired;
      await client.publishAsync(`${ROOT}/devices/${id}/desired`, JSON.stringify(doc), { qos: 1, retain: true });
    }
    const summarize = () => {
      const logged: Record<string, number> = {};
      for (const { level, msg } of agentLogs.records) logged[`${level} ${msg}`] = (logged[`${level} ${msg}`] ?? 0) + 1;
      return logged;
    };
    cleanup.add('agent log summary', () => console.info(`agent log lines by level and message: ${JSON.stringify(summarize(), null, 1)}`));
    for (const { id, agent, runtime } of agents) {
      await waitFor(
        `${id} running the well-formed document`,
        () => runtime.containers().some((c) => c.image === 'registry.local/fuzzcheck:1' && c.state === 'running'),
        { timeoutMs: 30_000, intervalMs: 100 },
      );
      expect(agent.link.connected).toBe(true);
    }
    expect(Object.keys(summarize()).filter((key) => key.startsWith('60 '))).toEqual([]);
  });
});

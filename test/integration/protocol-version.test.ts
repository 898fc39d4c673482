/**
 * The application protocol version against a real hub (Aedes on loopback) and
 * the agent's real MQTT link: an agent states its version in its will, the
 * hub refuses one it does not speak with CONNACK 1 before the session is
 * restored, says so (a log line and a device event naming both sides'
 * versions), and the agent says so in one line and backs off. Today's agents,
 * which state nothing, are version 1.
 */
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { Link } from '../../agent/link.js';
import type { BackoffPolicy } from '../../agent/reconnect-backoff.js';
import { Topics } from '../../shared/index.js';
import { AGENT_PROTOCOL_VERSION, PROTOCOL_VERSIONS } from '../../shared/protocol-version.js';
import { Cleanup } from '../support/cleanup.js';
import { http } from '../support/http.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { LogCapture, type LogRecord } from '../support/logs.js';
import { closeClient, connectClient } from '../support/mqtt-client.js';
import { waitFor } from '../support/wait.js';

const topics = new Topics();
const DEVICE = 'dev-proto';
const AGENT_REFUSED = "refused this agent's protocol version";
// Short so the test sees several retries; the default is 1 min doubling to 10 min.
const REFUSED_BACKOFF: BackoffPolicy = { baseMs: 400, maxMs: 800 };

describe('protocol version', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function hub(protocolVersions?: number[]): Promise<TestHub> {
    const started = await startTestHub({ logLevel: 'debug', ...(protocolVersions ? { deps: { protocolVersions } } : {}) });
    cleanup.add('hub', () => started.close());
    return started;
  }

  function agentLink(hubUrl: string, protocolVersion?: number): { link: Link; logs: LogCapture } {
    const logs = new LogCapture('debug');
    const link = new Link({
      hubUrl,
      deviceId: DEVICE,
      topics,
      logger: logs.logger,
      onDesired: () => undefined,
      stateIntervalMs: 0,
      reconnect: { baseMs: 50, maxMs: 100 },
      protocolRefusedReconnect: REFUSED_BACKOFF,
      ...(protocolVersion !== undefined ? { protocolVersion } : {}),
    });
    cleanup.add('link', () => link.close());
    return { link, logs };
  }

  const refusedLines = (logs: LogCapture): LogRecord[] => logs.records.filter((r) => r.msg.includes(AGENT_REFUSED));
  const hubRefusals = (hub: TestHub): LogRecord[] => hub.logs.records.filter((r) => r.component === 'mqtt-protocol');

  it('admits an agent of its own version, and says which versions it speaks', async () => {
    const h = await hub();
    const { link, logs } = agentLink(h.mqttUrl);
    await waitFor('the agent to connect', () => link.connected || undefined);
    expect(refusedLines(logs)).toEqual([]);
    expect(hubRefusals(h)).toEqual([]);
    const version = await http(h.httpUrl, 'GET', '/api/v1/version');
    expect(version.status).toBe(200);
    expect(version.body).toEqual({ version: expect.stringMatching(/^\d+\.\d+\.\d+/), protocolVersions: [...PROTOCOL_VERSIONS] });
    expect(version.body.protocolVersions).toContain(AGENT_PROTOCOL_VERSION);
    // And in the line a hub starts with.
    expect(h.logs.matching('hub ready')[0]).toMatchObject({ version: version.body.version, protocolVersions: [...PROTOCOL_VERSIONS] });
  });

  it('treats an agent that states no version (a will without `protocol`) as version 1', async () => {
    const statesNothing = {
      topic: topics.device(DEVICE, 'status'),
      payload: JSON.stringify({ online: false, at: new Date().toISOString() }),
    };
    const h1 = await hub([1]);
    const admitted = await connectClient(h1.mqttUrl, { clientId: DEVICE, clean: false, will: { ...statesNothing, qos: 1, retain: true } });
    await closeClient(admitted);

    const h2 = await hub([2]);
    const refused = mqtt.connect(h2.mqttUrl, {
      clientId: DEVICE,
      clean: false,
      reconnectPeriod: 0,
      will: { ...statesNothing, qos: 1, retain: true },
    });
    cleanup.add('client', () => refused.endAsync(true));
    const error = await new Promise<Error & { code?: number }>((resolve) => refused.once('error', resolve));
    expect(error.code).toBe(1);
    const line = await waitFor('the hub to log the refusal', () => hubRefusals(h2)[0]);
    expect(line).toMatchObject({ level: 40, deviceId: DEVICE, protocol: 1, hubProtocols: [2] });
    expect(line.msg).toBe(`refused the agent of device ${DEVICE}: it speaks protocol version 1, this hub speaks [2]: upgrade the agent`);
  });

  it('refuses an agent of a version it does not speak: both sides say so, the agent backs off', async () => {
    const h = await hub([1]);
    // Known to the hub first (a device that then got a newer agent), so the refusal is also a device event.
    const first = agentLink(h.mqttUrl);
    await waitFor(
      'the device to be known',
      async () => (await http(h.httpUrl, 'GET', `/api/v1/devices/${DEVICE}`)).status === 200 || undefined,
    );
    await first.link.close();

    const started = Date.now();
    const { link, logs } = agentLink(h.mqttUrl, 2);
    const agentLine = await waitFor('the agent to log the refusal', () => refusedLines(logs)[0]);
    expect(agentLine).toMatchObject({ level: 50, component: 'link', protocol: 2 });
    expect(agentLine.msg).toBe(
      `the hub at ${h.mqttUrl} refused this agent's protocol version 2: it speaks others (\`flotilla version\` lists them); upgrade the hub or the agent so both speak one version. Retrying every few minutes`,
    );
    const hubLine = await waitFor('the hub to log the refusal', () => hubRefusals(h)[0]);
    expect(hubLine).toMatchObject({ level: 40, deviceId: DEVICE, address: '127.0.0.1', protocol: 2, hubProtocols: [1] });
    expect(hubLine.msg).toBe(`refused the agent of device ${DEVICE}: it speaks protocol version 2, this hub speaks [1]: upgrade the hub`);

    // Retried on the refusal schedule (never sooner than half a window), each retry refused again.
    await waitFor('three refusals', () => (refusedLines(logs).length >= 3 ? true : undefined), { timeoutMs: 10_000 });
    const elapsed = Date.now() - started;
    const retries = logs.records.filter((r) => r.msg === 'reconnecting to hub');
    expect(retries.length).toBeGreaterThanOrEqual(2);
    for (const retry of retries) expect(retry.delayMs).toBeGreaterThanOrEqual(REFUSED_BACKOFF.baseMs / 2);
    // Three attempts took at least the two waits between them.
    expect(elapsed).toBeGreaterThanOrEqual(REFUSED_BACKOFF.baseMs);
    expect(link.connected).toBe(false);
    // The hub warns once per device per hour; the retries are debug lines.
    expect(hubRefusals(h).filter((r) => r.level === 40)).toHaveLength(1);
    expect(hubRefusals(h).filter((r) => r.level === 20).length).toBeGreaterThanOrEqual(2);

    const events = await waitFor('a protocol-refused event', async () => {
      const res = await http(h.httpUrl, 'GET', `/api/v1/events?device=${DEVICE}`);
      const found = (res.body.events as { type: string; message: string }[]).filter((e) => e.type === 'protocol-refused');
      return found.length > 0 ? found : undefined;
    });
    expect(events).toEqual([expect.objectContaining({ message: hubLine.msg })]);
    const device = await http(h.httpUrl, 'GET', `/api/v1/devices/${DEVICE}`);
    expect(device.body.online).toBe(false);
  });

  it('admits the refused agent once the hub speaks its version', async () => {
    const h = await hub([1]);
    const { link, logs } = agentLink(h.mqttUrl, 2);
    await waitFor('the agent to log the refusal', () => refusedLines(logs)[0]);
    const upgraded = await h.restart({ deps: { protocolVersions: [1, 2] } });
    cleanup.add('upgraded hub', () => upgraded.close());
    await waitFor('the agent to connect to the upgraded hub', () => link.connected || undefined, { timeoutMs: 10_000 });
    expect(hubRefusals(upgraded)).toEqual([]);
  });
});

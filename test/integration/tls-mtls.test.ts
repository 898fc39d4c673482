/**
 * Mutual TLS on a hub that admits nobody anonymous: a client certificate the
 * hub's client CA signed, whose CN is a registered device id, logs that
 * device in without a password, over mqtts and over wss, and it gets exactly
 * that device's rights. A certificate from another CA with the same CN, a CN
 * no device has, a revoked device, or a client id or username other than the
 * CN get nothing. A real agent pins the CA and logs in by certificate.
 */

import { get as httpsGet } from 'node:https';
import Dockerode from 'dockerode';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Agent, startAgent } from '../../agent/agent.js';
import { DockerRuntime } from '../../agent/runtime/docker-runtime.js';
import type { DeviceState } from '../../shared/index.js';
import { adminKey, bearer, registerDevice } from '../support/auth.js';
import { Cleanup } from '../support/cleanup.js';
import { makeTestCerts, type TestCerts } from '../support/dev-certs.js';
import { deviceState } from '../support/fixtures.js';
import { http } from '../support/http.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { LogCapture } from '../support/logs.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';
import { scratchDir } from '../support/scratch.js';
import { waitFor } from '../support/wait.js';

const dev = (id: string, channel: string) => `flotilla/v1/devices/${id}/${channel}`;
/** MQTT 3.1.1 CONNACK return codes [MQTT-3.2.2.3]. */
const IDENTIFIER_REJECTED = 2;
const BAD_USERNAME_OR_PASSWORD = 4;
const NOT_AUTHORIZED = 5;
const NO_ENGINE = '/nonexistent/docker.sock';

describe('mutual TLS: a verified certificate CN is the device', () => {
  let certs: TestCerts;
  /** Another CA, which signs a certificate with the very same CN. */
  let forged: TestCerts;
  const cleanup = new Cleanup();
  let hub: TestHub;
  let mqttsUrl: string;
  let wssUrl: string;

  beforeAll(async () => {
    [certs, forged] = await Promise.all([makeTestCerts(['gw-a', 'gw-b', 'gw-unknown']), makeTestCerts(['gw-a'])]);
  });

  beforeEach(async () => {
    hub = cleanup.add('hub', () => hub.close(), await startTestHub({ config: { ...certs.hubConfig, allowAnonymous: false } }));
    mqttsUrl = `mqtts://127.0.0.1:${hub.hub.ports.mqtts}`;
    wssUrl = `wss://127.0.0.1:${hub.hub.ports.wss}`;
    await registerDevice(hub, 'gw-a');
    await registerDevice(hub, 'gw-b');
  });
  afterEach(() => cleanup.run());

  /** A client pinned to the dev CA, presenting `deviceId`'s certificate from `from` (default: the hub's client CA). */
  async function byCertificate(url: string, deviceId: string, options: IClientOptions = {}, from = certs): Promise<MqttClient> {
    const c = await connectClient(url, { ca: certs.ca, ...from.client(deviceId), clientId: deviceId, ...options });
    cleanup.add(`client ${deviceId}`, () => closeClient(c));
    return c;
  }

  /** The SUBACK's granted codes, whether or not mqtt.js calls it a failure. */
  async function granted(c: MqttClient, filters: string[]): Promise<number[]> {
    return c.subscribeAsync(filters, { qos: 1 }).then(
      (grants) => grants.map((g) => g.qos),
      (err: Error & { packet?: { granted: number[] } }) => err.packet?.granted ?? [],
    );
  }

  for (const transport of ['mqtts', 'wss'] as const) {
    it(`over ${transport}, gw-a's certificate alone logs in as gw-a: its own desired state and commands, not gw-b's`, async () => {
      const a = await byCertificate(transport === 'mqtts' ? mqttsUrl : wssUrl, 'gw-a');
      const inbox = new Inbox(a);
      expect(
        await granted(a, [
          dev('gw-a', 'desired'),
          dev('gw-a', 'commands'),
          dev('gw-b', 'desired'),
          dev('gw-b', 'commands'),
          dev('+', 'desired'),
        ]),
      ).toEqual([1, 1, 128, 128, 128]);
      // As gw-a it reports its state and the hub answers with gw-a's desired document.
      await a.publishAsync(dev('gw-a', 'state'), JSON.stringify(deviceState('gw-a')), { qos: 1 });
      await inbox.waitFor(dev('gw-a', 'desired'));
      expect(inbox.messages.map((m) => m.topic)).toEqual([dev('gw-a', 'desired')]);
    });
  }

  it('as gw-a it may not publish gw-b’s state: the connection is closed', async () => {
    const a = await byCertificate(mqttsUrl, 'gw-a');
    const closed = new Promise<void>((resolve) => a.once('close', () => resolve()));
    a.publish(dev('gw-b', 'state'), JSON.stringify(deviceState('gw-b')), { qos: 1 });
    await closed;
  });

  it('refuses a certificate with the same CN signed by another CA: it names nobody, and anonymous clients are not allowed', async () => {
    const outcome = await tryConnect(mqttsUrl, { ca: certs.ca, ...forged.client('gw-a'), clientId: 'gw-a' });
    expect(outcome).toEqual({ refused: NOT_AUTHORIZED });
  });

  it('refuses a verified certificate whose CN is no registered device', async () => {
    expect(await tryConnect(mqttsUrl, { ca: certs.ca, ...certs.client('gw-unknown'), clientId: 'gw-unknown' })).toEqual({
      refused: NOT_AUTHORIZED,
    });
  });

  it('refuses gw-a’s certificate with another client id or another username', async () => {
    expect(await tryConnect(mqttsUrl, { ca: certs.ca, ...certs.client('gw-a'), clientId: 'gw-b' })).toEqual({
      refused: IDENTIFIER_REJECTED,
    });
    expect(
      await tryConnect(mqttsUrl, { ca: certs.ca, ...certs.client('gw-a'), clientId: 'gw-b', username: 'gw-b', password: 'x' }),
    ).toEqual({
      refused: BAD_USERNAME_OR_PASSWORD,
    });
  });

  it('refuses a revoked device’s certificate', async () => {
    const revoke = await http(hub.httpUrl, 'POST', '/api/v1/devices/gw-a/revoke', undefined, bearer(adminKey(hub)));
    expect(revoke.status).toBe(200);
    expect(await tryConnect(mqttsUrl, { ca: certs.ca, ...certs.client('gw-a'), clientId: 'gw-a' })).toMatchObject({
      refused: expect.any(Number),
    });
  });

  it('over TLS without a certificate, a device still logs in with its id and secret, and nobody anonymously', async () => {
    const { secret } = await registerDevice(hub, 'gw-c');
    const c = await connectClient(mqttsUrl, { ca: certs.ca, clientId: 'gw-c', username: 'gw-c', password: secret });
    cleanup.add('gw-c', () => closeClient(c));
    expect(await granted(c, [dev('gw-c', 'desired'), dev('gw-a', 'desired')])).toEqual([1, 128]);
    expect(await tryConnect(mqttsUrl, { ca: certs.ca, clientId: 'nobody' })).toEqual({ refused: NOT_AUTHORIZED });
  });

  it('the https API asks for the same bearer token as http: 401 without, 200 with the admin key', async () => {
    const url = `https://127.0.0.1:${hub.hub.ports.https}/api/v1/devices`;
    expect((await httpsGetJson(url, certs.ca)).status).toBe(401);
    const withKey = await httpsGetJson(url, certs.ca, bearer(adminKey(hub)));
    expect(withKey.status).toBe(200);
    expect(withKey.body).toEqual((await http(hub.httpUrl, 'GET', '/api/v1/devices', undefined, bearer(adminKey(hub)))).body);
  });

  describe('a real agent', () => {
    const agents = new Cleanup();
    afterEach(() => agents.run());

    async function launchAgent(deviceId: string, tls: { ca: string; tlsCert: string; tlsKey: string }, logs: LogCapture): Promise<Agent> {
      const dataDir = scratchDir('flotilla-it-agent-');
      const agent = await startAgent(
        { deviceId, hubUrl: mqttsUrl, dataDir, logLevel: 'silent', stateIntervalMs: 50, ...tls },
        { runtime: new DockerRuntime(new Dockerode({ socketPath: NO_ENGINE })), logger: logs.logger },
      );
      agents.add('agent', () => agent.close());
      return agent;
    }

    it('pins the dev CA and logs in by certificate (no secret): the hub sees gw-a report', async () => {
      const watcher = await connectClient(hub.mqttUrl, { clientId: 'admin.watch', username: 'admin', password: adminKey(hub) });
      cleanup.add('watcher', () => closeClient(watcher));
      const inbox = new Inbox(watcher);
      await watcher.subscribeAsync(dev('gw-a', 'state'), { qos: 1 });

      const { cert, key } = certs.client('gw-a');
      await launchAgent('gw-a', { ca: certs.ca, tlsCert: cert, tlsKey: key }, new LogCapture('warn'));
      const state = await inbox.waitFor<DeviceState>(dev('gw-a', 'state'));
      expect(state.deviceId).toBe('gw-a');
      await waitFor('gw-a online over HTTP', async () => {
        const r = await http(hub.httpUrl, 'GET', '/api/v1/devices/gw-a', undefined, bearer(adminKey(hub)));
        return r.status === 200 && r.body.online === true;
      });
    });

    it('pinned to another CA, it does not connect to this hub, and says why', async () => {
      const logs = new LogCapture('warn');
      const { cert, key } = certs.client('gw-a');
      await launchAgent('gw-a', { ca: forged.ca, tlsCert: cert, tlsKey: key }, logs);
      const unreachable = await logs.waitFor('hub unreachable; retrying');
      expect(String(unreachable.err)).toMatch(/certificate|issuer/i);
      const r = await http(hub.httpUrl, 'GET', '/api/v1/devices/gw-a', undefined, bearer(adminKey(hub)));
      expect(r.body.online).not.toBe(true);
    });
  });
});

/** One attempt, no retry: connected, or the CONNACK return code it was refused with. */
function tryConnect(url: string, options: IClientOptions): Promise<{ connected: true } | { refused: number } | { error: string }> {
  const client = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5_000, ...options });
  return new Promise((resolve) => {
    const done = (outcome: { connected: true } | { refused: number } | { error: string }) => {
      client.end(true);
      resolve(outcome);
    };
    client.once('connect', () => done({ connected: true }));
    client.once('error', (err: Error & { code?: unknown }) =>
      done(typeof err.code === 'number' ? { refused: err.code } : { error: `${String(err.code)}: ${err.message}` }),
    );
    client.once('close', () => done({ error: 'closed before CONNACK' }));
  });
}

function httpsGetJson(url: string, ca: string, headers: Record<string, string> = {}): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = httpsGet(url, { ca, headers, timeout: 5_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

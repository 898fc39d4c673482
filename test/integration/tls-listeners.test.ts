/**
 * The hub's TLS listeners with certificates from `flotilla certs dev`'s code
 * (real openssl, made once for this file): mqtts and wss take clients that
 * trust the dev CA and only those; https answers the API as http does; the
 * plaintext listeners keep working beside them.
 */
import { execFile } from 'node:child_process';
import { get as httpsGet } from 'node:https';
import { createConnection, type Socket } from 'node:net';
import { promisify } from 'node:util';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Cleanup } from '../support/cleanup.js';
import { makeTestCerts, type TestCerts } from '../support/dev-certs.js';
import { http } from '../support/http.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';
import { runCli } from '../support/processes.js';

const execFileAsync = promisify(execFile);
const TOPIC = 'flotilla/v1/devices/dev-tls/state';

describe('TLS listeners (mqtts, wss, https)', () => {
  let certs: TestCerts;
  /** A second, unrelated CA: what a client pinned to another fleet trusts. */
  let otherCerts: TestCerts;
  const cleanup = new Cleanup();
  let hub: TestHub;
  let ports: { mqtts: number; wss: number; https: number };

  beforeAll(async () => {
    [certs, otherCerts] = await Promise.all([makeTestCerts(), makeTestCerts()]);
  });

  beforeEach(async () => {
    hub = cleanup.add('hub', () => hub.close(), await startTestHub({ config: certs.hubConfig }));
    const { mqtts, wss, https } = hub.hub.ports;
    if (mqtts === undefined || wss === undefined || https === undefined) throw new Error('the hub started no TLS listeners');
    ports = { mqtts, wss, https };
  });
  afterEach(() => cleanup.run());

  it('gives every listener its own port, the plaintext ones included', () => {
    const all = [hub.hub.ports.mqtt, hub.hub.ports.ws, hub.hub.ports.http, ports.mqtts, ports.wss, ports.https];
    expect(new Set(all).size).toBe(6);
  });

  it('mqtts accepts an MQTT.js client that trusts the dev CA, and delivers to a plaintext subscriber', async () => {
    const plain: MqttClient = cleanup.add('plain', () => closeClient(plain), await connectClient(hub.mqttUrl));
    const inbox = new Inbox(plain);
    await plain.subscribeAsync(TOPIC, { qos: 1 });

    const secure = await connectClient(`mqtts://127.0.0.1:${ports.mqtts}`, { ca: certs.ca });
    cleanup.add('secure', () => closeClient(secure));
    await secure.publishAsync(TOPIC, JSON.stringify({ over: 'mqtts' }), { qos: 1 });
    expect(await inbox.waitFor(TOPIC)).toEqual({ over: 'mqtts' });
  });

  it('mqtts refuses a plaintext MQTT client: no CONNACK, the connection is closed', async () => {
    const outcome = await tryConnect(`mqtt://127.0.0.1:${ports.mqtts}`);
    expect(outcome.client).toBeUndefined();
    expect(outcome.error?.message).toMatch(/closed before CONNACK|ECONNRESET|socket hang up/);
  });

  it('mqtts refuses a client that does not trust the dev CA: neither the system store nor another CA vouches for the hub', async () => {
    const systemTrust = await tryConnect(`mqtts://127.0.0.1:${ports.mqtts}`);
    expect(systemTrust.client).toBeUndefined();
    expect((systemTrust.error as NodeJS.ErrnoException | undefined)?.code).toMatch(/CERT|ISSUER/);

    const otherFleet = await tryConnect(`mqtts://127.0.0.1:${ports.mqtts}`, { ca: otherCerts.ca, rejectUnauthorized: true });
    expect(otherFleet.client).toBeUndefined();
    expect((otherFleet.error as NodeJS.ErrnoException | undefined)?.code).toMatch(/CERT|ISSUER/);
  });

  it('mqtts checks the name: a client pinned to the dev CA reaching the hub by a name not in its certificate is refused', async () => {
    const outcome = await tryConnect(`mqtts://127.0.0.1:${ports.mqtts}`, { ca: certs.ca, servername: 'hub.example.org' });
    expect(outcome.client).toBeUndefined();
    expect((outcome.error as NodeJS.ErrnoException | undefined)?.code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
  });

  it('a mosquitto client over mqtts (--cafile) reaches an MQTT.js subscriber over wss', async () => {
    const dashboard = await connectClient(`wss://127.0.0.1:${ports.wss}`, { ca: certs.ca });
    cleanup.add('dashboard', () => closeClient(dashboard));
    const inbox = new Inbox(dashboard);
    await dashboard.subscribeAsync(TOPIC, { qos: 1 });

    // -h localhost: mosquitto checks the certificate against the host name it was given.
    await execFileAsync(
      'mosquitto_pub',
      // An explicit client id: mosquitto's clients otherwise send an empty one, which the hub refuses.
      // biome-ignore format: flag-value pairs
      ['-h', 'localhost', '-p', String(ports.mqtts), '--cafile', certs.hubConfig.tlsClientCaFile, '-i', 'mosquitto-tls', '-V', 'mqttv311', '-q', '1', '-t', TOPIC, '-m', '{"over":"mosquitto"}'],
      { timeout: 15_000 },
    );
    expect(await inbox.waitFor(TOPIC)).toEqual({ over: 'mosquitto' });
  });

  it('wss refuses a client that does not trust the dev CA', async () => {
    const outcome = await tryConnect(`wss://127.0.0.1:${ports.wss}`);
    expect(outcome.client).toBeUndefined();
    expect((outcome.error as NodeJS.ErrnoException | undefined)?.code).toMatch(/CERT|ISSUER/);
  });

  it('https answers /healthz and the API as http does, for a client trusting the dev CA', async () => {
    expect(await httpsJson(`https://127.0.0.1:${ports.https}/healthz`, certs.ca)).toEqual({ status: 200, body: { ok: true } });
    const overHttp = await http(hub.httpUrl, 'GET', '/api/v1/devices');
    expect(overHttp.status).toBe(200);
    expect(await httpsJson(`https://127.0.0.1:${ports.https}/api/v1/devices`, certs.ca)).toEqual({ status: 200, body: overHttp.body });
  });

  it('the CLI reaches the https API with --ca pinning the dev CA, and refuses the hub without it', { timeout: 60_000 }, async () => {
    const hubUrl = `https://127.0.0.1:${ports.https}`;
    const pinned = await runCli(['--hub', hubUrl, '--ca', certs.hubConfig.tlsClientCaFile, 'get', 'devices', '-o', 'json']);
    expect(pinned.stderr).toBe('');
    expect(pinned.code).toBe(0);
    expect(JSON.parse(pinned.stdout)).toEqual((await http(hub.httpUrl, 'GET', '/api/v1/devices')).body);
    const unpinned = await runCli(['--hub', hubUrl, 'get', 'devices']);
    expect(unpinned.code).toBe(1);
    expect(unpinned.stderr).toMatch(/certificate|issuer/i);
    // The advice names the fix (the CA), not "is the hub running?".
    expect(unpinned.stderr).toMatch(/pass the CA that signed it with --ca FILE or FLOTILLA_CA/);
  });

  it('closes promptly while clients sit in the TLS handshake (connected, never sending a ClientHello)', async () => {
    const silent = await Promise.all(
      [ports.mqtts, ports.wss, ports.https].map(
        (port) =>
          new Promise<Socket>((resolve, reject) => {
            const socket = createConnection({ host: '127.0.0.1', port }, () => resolve(socket));
            socket.on('error', reject);
          }),
      ),
    );
    const closedByHub = silent.map((socket) => new Promise<void>((resolve) => socket.once('close', () => resolve())));
    const started = Date.now();
    await hub.close();
    await Promise.all(closedByHub);
    // Node's own handshake timeout is 120 s and the hub's 10 s: neither is what ended these.
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('tells the dashboard page where wss is, so a page served over https connects there', async () => {
    const config = await httpsJson(`https://127.0.0.1:${ports.https}/dashboard/config.json`, certs.ca);
    expect(config).toEqual({ status: 200, body: { wsPort: hub.hub.ports.ws, wssPort: ports.wss, topicRoot: 'flotilla/v1' } });
  });

  it('https refuses a plaintext request and a client that does not trust the dev CA', async () => {
    await expect(fetch(`http://127.0.0.1:${ports.https}/healthz`, { signal: AbortSignal.timeout(5_000) })).rejects.toThrow();
    await expect(httpsJson(`https://127.0.0.1:${ports.https}/healthz`, otherCerts.ca)).rejects.toMatchObject({
      code: expect.stringMatching(/CERT|ISSUER/),
    });
  });
});

describe('TLS configuration', () => {
  let certs: TestCerts;
  beforeAll(async () => {
    certs = await makeTestCerts();
  });

  it('starts no TLS listener without a certificate and key', async () => {
    const hub = await startTestHub();
    try {
      expect(hub.hub.ports).not.toHaveProperty('mqtts');
      expect(hub.hub.ports).not.toHaveProperty('https');
    } finally {
      await hub.close();
    }
  });

  it('refuses a certificate without its key, a client CA alone, a key that does not match and a missing file, naming the setting', async () => {
    const { tlsKeyFile: _key, ...withoutKey } = certs.hubConfig;
    await expect(startTestHub({ config: withoutKey })).rejects.toThrow(/tlsKeyFile: required with tlsCertFile/);
    await expect(startTestHub({ config: { tlsClientCaFile: certs.hubConfig.tlsClientCaFile } })).rejects.toThrow(
      /tlsClientCaFile: needs tlsCertFile and tlsKeyFile/,
    );
    const mismatched = { ...certs.hubConfig, tlsKeyFile: `${certs.dir}/ca-key.pem` };
    await expect(startTestHub({ config: mismatched })).rejects.toThrow(/invalid TLS files \(tlsCertFile .*key values mismatch/);
    await expect(startTestHub({ config: { ...certs.hubConfig, tlsCertFile: `${certs.dir}/missing.pem` } })).rejects.toThrow(
      /cannot read tlsCertFile .*missing\.pem: ENOENT/,
    );
  });
});

interface Outcome {
  client?: MqttClient;
  error?: Error;
}

/** One connection attempt, no retry: the connected client, or why there was none. */
function tryConnect(url: string, options: IClientOptions = {}): Promise<Outcome> {
  const client = mqtt.connect(url, {
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5_000,
    clientId: `tls-it-${Date.now()}`,
    ...options,
  });
  return new Promise((resolve) => {
    const fail = (error: Error) => {
      client.end(true);
      resolve({ error });
    };
    client.once('connect', () => {
      // Not expected by the callers; closed so no test leaks a connection.
      client.end(true);
      resolve({ client });
    });
    client.once('error', fail);
    client.once('close', () => fail(new Error('closed before CONNACK')));
  });
}

function httpsJson(url: string, ca: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = httpsGet(url, { ca, timeout: 5_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

/**
 * Starting and stopping the hub as an operator (or a supervisor restarting
 * it) experiences it: bad configuration is refused by name, a stop releases
 * every port and disconnects every client, and a start that fails half-way
 * leaves nothing behind.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHub } from '../../broker/hub.js';
import { Cleanup } from '../support/cleanup.js';
import { startTestHub } from '../support/hub.js';
import { closeClient, connectClient } from '../support/mqtt-client.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

describe('hub lifecycle', () => {
  const cleanup = new Cleanup();
  let dataDir: string;

  beforeEach(() => {
    dataDir = cleanup.add(
      'data dir',
      () => rmSync(dataDir, { recursive: true, force: true }),
      mkdtempSync(join(tmpdir(), 'flotilla-it-life-')),
    );
  });

  afterEach(() => cleanup.run());

  it('refuses an invalid configuration, naming the key', async () => {
    await expect(startHub({ dataDir, host: '127.0.0.1', mqttPort: 70_000, logLevel: 'silent' })).rejects.toThrow(
      /invalid hub configuration:\nmqttPort: must be <= 65535/,
    );
    await expect(startHub({ dataDir, logLevel: 'chatty' })).rejects.toThrow(/logLevel: must be one of/);
    await expect(startHub({ dataDir, logLevel: 'silent', colour: 'blue' } as never)).rejects.toThrow(/colour: is not a known field/);
  });

  it('disconnects its clients and releases its ports on close, so it can start again on them', async () => {
    const hub = await startTestHub({ dataDir });
    cleanup.add('hub', () => hub.close());
    const { mqtt, ws, http } = hub.hub.ports;
    const tcpClient = await connectClient(hub.mqttUrl);
    cleanup.add('tcp client', () => closeClient(tcpClient));
    const wsClient = await connectClient(hub.wsUrl);
    cleanup.add('ws client', () => closeClient(wsClient));

    await hub.close();
    await waitFor('both clients disconnected', () => !tcpClient.connected && !wsClient.connected);
    await expect(fetch(`${hub.httpUrl}/healthz`)).rejects.toThrow();

    const again = await startHub({ dataDir, host: '127.0.0.1', mqttPort: mqtt, wsPort: ws, httpPort: http, logLevel: 'silent' });
    cleanup.add('hub again', () => again.close());
    expect(again.ports).toEqual({ mqtt, ws, http });
    expect((await fetch(`http://127.0.0.1:${http}/healthz`)).status).toBe(200);
  });

  // The HTTP listener is bound after the broker and dispatcher; the WebSocket listener right after
  // the MQTT one, inside startBroker. Either failing must release what was already bound.
  it.each(['httpPort', 'wsPort'] as const)('releases the MQTT port it already bound when %s cannot be bound', async (blocked) => {
    const blockedPort = await freePort();
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(blockedPort, '127.0.0.1', resolve));
    cleanup.add('blocker', () => new Promise((resolve) => blocker.close(resolve)));
    const mqttPort = await freePort();
    const ports = { mqttPort, wsPort: 0, httpPort: 0, [blocked]: blockedPort };

    await expect(startHub({ dataDir, host: '127.0.0.1', ...ports, logLevel: 'silent' })).rejects.toThrow(
      `EADDRINUSE: address already in use 127.0.0.1:${blockedPort}`,
    );

    // A supervisor retries with other ports: the MQTT port must be free again.
    const retry = await startHub({ dataDir, host: '127.0.0.1', mqttPort, wsPort: 0, httpPort: 0, logLevel: 'silent' });
    cleanup.add('retry hub', () => retry.close());
    expect(retry.ports.mqtt).toBe(mqttPort);
  });
});

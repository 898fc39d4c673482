/**
 * An empty client id on a hub that lets anonymous clients in: accepted with a
 * clean session (the broker assigns one; mosquitto_sub and mosquitto_pub send
 * none by default), refused with CONNACK 2 and closed with a persistent one,
 * which could never be found again under its id [MQTT-3.1.3-8].
 */
import { connect as tcpConnect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_TOPIC_ROOT } from '../../shared/index.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { mosquittoPub } from '../support/mosquitto.js';
import { frame, str } from '../support/mqtt-frame.js';

/** CONNECT, MQTT 3.1.1, no credentials, keepalive 0. */
function connectPacket(clientId: string, clean: boolean): Buffer {
  return frame(0x10, Buffer.concat([str('MQTT'), Buffer.from([4, clean ? 0x02 : 0, 0, 0]), str(clientId)]));
}

/** Sends CONNECT on a raw socket; resolves with what the broker sent and whether it closed the connection within 2 s. */
function rawConnect(port: number, packet: Buffer): Promise<{ received: Buffer; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = tcpConnect(port, '127.0.0.1', () => socket.write(packet));
    const done = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ received: Buffer.concat(chunks), closed });
    };
    const timer = setTimeout(() => done(false), 2000);
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('close', () => done(true));
    socket.on('error', reject);
  });
}

describe('an empty client id', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startTestHub();
  });
  afterAll(async () => {
    await hub?.close();
  });

  it('is refused with CONNACK 2 ("identifier rejected") and closed when the session is persistent', async () => {
    const { received, closed } = await rawConnect(hub.hub.ports.mqtt, connectPacket('', false));
    expect([...received]).toEqual([0x20, 0x02, 0x00, 0x02]);
    expect(closed).toBe(true);
    expect(hub.logs.matching('MQTT client id refused').map((r) => r.reason)).toEqual(['empty client id with a persistent session']);
  });

  it('is accepted with a clean session, as mosquitto_pub sends it', async () => {
    const { received, closed } = await rawConnect(hub.hub.ports.mqtt, connectPacket('', true));
    expect([...received]).toEqual([0x20, 0x02, 0x00, 0x00]);
    expect(closed).toBe(false);
    // mosquitto_pub exits non-zero if its CONNECT is refused.
    await mosquittoPub(hub.hub.ports.mqtt, `${DEFAULT_TOPIC_ROOT}/api/any/request`, '{"correlationId":"1","method":"apps.list"}');
  });
});

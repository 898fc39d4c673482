/**
 * The MQTT URL a hub announces to registering agents (`--agent-mqtt-url`): replicas behind a load
 * balancer announce the balancer's, so `flotilla agent register` through any replica writes the
 * balancer's address into the agent's config rather than that replica's own host and port. A real
 * hub, the real CLI, and the config file it writes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveHubConfig } from '../../broker/config.js';
import { createToken } from '../support/auth.js';
import { Cleanup } from '../support/cleanup.js';
import { http } from '../support/http.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { removeDir, runCli, scratchDir } from '../support/processes.js';

const BALANCER = 'mqtt://mqtt.fleet.example:1883';
/** No Docker Engine: register checks for one and only warns without it. */
const NO_ENGINE = { DOCKER_HOST: 'tcp://127.0.0.1:1' };

describe('the MQTT URL a hub announces to registering agents', () => {
  const cleanup = new Cleanup();
  let hub: TestHub;

  beforeAll(async () => {
    hub = cleanup.add('hub', () => hub.close(), await startTestHub({ config: { allowAnonymous: false, agentMqttUrl: BALANCER } }));
  });
  afterAll(() => cleanup.run());

  const register = async (...args: string[]) => {
    const dataDir = scratchDir('flotilla-announced-');
    cleanup.add('agent dir', () => removeDir(dataDir));
    const { token } = await createToken(hub);
    const result = await runCli(['agent', 'register', '--hub', hub.httpUrl, '--token', token, '--data-dir', dataDir, ...args], {
      env: { FLOTILLA_TOKEN: '', ...NO_ENGINE },
    });
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(readFileSync(join(dataDir, 'agent.json'), 'utf8')) as { hubUrl: string };
  };

  it("is what agent register writes into the agent's config, instead of the hub's own host and MQTT port", async () => {
    expect((await register('--device-id', 'behind-balancer')).hubUrl).toBe(BALANCER);
    const { token } = await createToken(hub);
    const answer = await http(hub.httpUrl, 'POST', '/api/v1/register', { token, deviceId: 'raw-1' });
    expect(answer.body).toMatchObject({ mqtt: { port: hub.hub.ports.mqtt, url: BALANCER } });
  });

  it("gives way to the device's own --mqtt-url", async () => {
    expect((await register('--device-id', 'own-url', '--mqtt-url', 'mqtts://10.0.0.9:8883')).hubUrl).toBe('mqtts://10.0.0.9:8883');
  });

  it('must be an MQTT URL', () => {
    for (const agentMqttUrl of ['https://mqtt.fleet.example', 'mqtt.fleet.example:1883', 'mqtt://:1883']) {
      expect(() => resolveHubConfig({ agentMqttUrl })).toThrow(
        'invalid hub configuration:\nagentMqttUrl: expected the MQTT URL agents connect to, like mqtt://mqtt.example:1883 or mqtts://mqtt.example:8883',
      );
    }
    expect(resolveHubConfig({ agentMqttUrl: 'wss://mqtt.fleet.example/mqtt' }).agentMqttUrl).toBe('wss://mqtt.fleet.example/mqtt');
  });
});

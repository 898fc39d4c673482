/**
 * `flotilla agent --hub-key FILE` (env FLOTILLA_HUB_KEY): a hub key pinned by
 * hand, from what `GET /api/v1/hub/key` served. Real `flotilla server` and
 * `flotilla agent` processes (the agent's Docker socket points nowhere: only
 * which desired documents it takes matters here), an MQTT.js client as the forger.
 */
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { DeviceState } from '../../shared/index.js';
import { http } from '../support/http.js';
import { closeClient, connectClient } from '../support/mqtt-client.js';
import { runCli, scratchDir, spawnCli, startHubProcess, stopAll } from '../support/processes.js';
import { storedEvents } from '../support/stored-telemetry.js';
import { waitFor } from '../support/wait.js';

// An engine that refuses connections: the agent starts and reports it unreachable (a missing socket would stop it at start).
const NO_ENGINE = { DOCKER_HOST: 'tcp://127.0.0.1:1' };

describe('flotilla agent --hub-key', () => {
  afterEach(() => stopAll());

  it('pins the key from the JSON GET /api/v1/hub/key serves: the hub’s documents are followed, an unsigned one is refused with an event', async () => {
    const hub = await startHubProcess();
    const dir = scratchDir('flotilla-hub-key-');
    const keyFile = join(dir, 'hub.json');
    // What `curl http://hub:7080/api/v1/hub/key > hub.json` writes.
    const served = await http(hub.url, 'GET', '/api/v1/hub/key');
    writeFileSync(keyFile, JSON.stringify(served.body));

    const agent = spawnCli(
      'agent dev-k',
      ['agent', '--device-id', 'dev-k', '--hub-url', hub.mqttUrl, '--data-dir', join(dir, 'agent'), '--hub-key', keyFile],
      NO_ENGINE,
    );
    const device = () => http<DeviceState & { observedRevision: number }>(hub.url, 'GET', '/api/v1/devices/dev-k');
    await waitFor('dev-k at revision 1 (the hub’s signed document)', async () => (await device()).body.observedRevision === 1, {
      timeoutMs: 20_000,
    });

    const forger = await connectClient(hub.mqttUrl);
    await forger.publishAsync(
      'flotilla/v1/devices/dev-k/desired',
      JSON.stringify({ deviceId: 'dev-k', revision: 40, issuedAt: new Date().toISOString(), apps: [] }),
      { qos: 1 },
    );
    await closeClient(forger);
    const event = await waitFor('the rejection event stored by the hub', async () =>
      (await storedEvents(hub.url, 'dev-k')).find((e) => e.type === 'desired-rejected'),
    );
    expect(event.message).toBe('desired state revision 40 refused: unsigned');
    expect((await device()).body.observedRevision).toBe(1);
    expect(agent.output).not.toContain('no hub key pinned');
  });

  it('refuses, as a usage error, a key file that cannot be read or holds no public key (FLOTILLA_HUB_KEY too)', async () => {
    const dir = scratchDir('flotilla-hub-key-');
    const args = ['agent', '--device-id', 'dev-k', '--hub-url', 'mqtt://127.0.0.1:9', '--data-dir', join(dir, 'agent')];

    const missing = await runCli([...args, '--hub-key', join(dir, 'nope.pem')], { env: NO_ENGINE });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`cannot read the hub key ${join(dir, 'nope.pem')}`);

    const privateFile = join(dir, 'private.pem');
    writeFileSync(privateFile, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const fromEnv = await runCli(args, { env: { ...NO_ENGINE, FLOTILLA_HUB_KEY: privateFile } });
    expect(fromEnv.code).toBe(2);
    expect(fromEnv.stderr).toContain(`${privateFile}: the hub key is a private key`);

    const jsonFile = join(dir, 'other.json');
    writeFileSync(jsonFile, '{"error":{"code":"unauthorized"}}');
    const wrongJson = await runCli([...args, '--hub-key', jsonFile], { env: NO_ENGINE });
    expect(wrongJson.code).toBe(2);
    expect(wrongJson.stderr).toContain('expected a PEM public key or the JSON of GET /api/v1/hub/key');
  });
});

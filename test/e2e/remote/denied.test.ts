/**
 * Who may not: end to end with a real hub, a registered agent and an app's
 * container on the real Docker Engine. A viewer's exec and an operator's host
 * shell are refused with exit 4 and nothing runs on the device; another
 * device's MQTT client cannot subscribe to this device's sessions. Every
 * refusal is an audit record an admin reads with `flotilla audit`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { AuditRecord } from '../../../shared/api/results.js';
import { Topics } from '../../../shared/topics.js';
import { connectClient } from '../../support/mqtt-client.js';
import { runCli, scratchDir, stopAll } from '../../support/processes.js';
import { waitFor } from '../../support/wait.js';
import { docker, removeContainersAndVolumes } from '../support/docker-cli.js';
import { ensureTestImages } from '../support/images.js';
import { deployApp, type RemoteHub, startRegisteredAgent, startRemoteHub } from '../support/remote-fleet.js';
import { describeRemote } from '../support/remote-gate.js';

const suffix = Math.random().toString(36).slice(2, 8);
const app = `e2e-deny-${suffix}`;
const deviceId = `e2e-deny-${suffix}`;
const intruderId = `e2e-intruder-${suffix}`;

describeRemote('remote access refused by role and by topic, and audited', () => {
  let remote: RemoteHub;
  let containerId: string;
  let viewerKey: string;
  let operatorKey: string;

  async function audit(): Promise<AuditRecord[]> {
    const listed = await remote.cli(['audit', '--device', deviceId, '-o', 'json']);
    expect(listed.stderr).toBe('');
    return (JSON.parse(listed.stdout) as { items: AuditRecord[] }).items;
  }

  beforeAll(async () => {
    const images = await ensureTestImages();
    remote = await startRemoteHub();
    await startRegisteredAgent(remote, deviceId);
    containerId = await deployApp(remote, deviceId, app, { image: images.v1 });
    viewerKey = await remote.account(`viewer-${suffix}`, 'viewer');
    operatorKey = await remote.account(`operator-${suffix}`, 'operator');
  });

  afterAll(async () => {
    await stopAll();
    await removeContainersAndVolumes(`flotilla.app=${app}`);
  });

  it('a viewer’s exec exits 4, runs nothing, and is audited as denied', async () => {
    const marker = `/tmp/viewer-was-here-${suffix}`;
    const result = await remote.cli(['exec', deviceId, app, '--', 'touch', marker], { token: viewerKey });
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^error: /);
    expect(result.code).toBe(4);
    expect(await docker('exec', containerId, 'sh', '-c', `[ -e ${marker} ] && echo present || echo absent`)).toBe('absent');

    const record = await waitFor('the audit record of the refusal', async () =>
      (await audit()).find((r) => r.actor === `viewer-${suffix}` && r.kind === 'exec'),
    );
    expect(record).toMatchObject({ device: deviceId, outcome: 'denied' });
    expect(record.what).toContain('touch');
    expect(record.reason).toBeTruthy();
  });

  it('an operator’s host shell exits 4 and is audited as denied', async () => {
    const result = await remote.cli(['shell', deviceId], { token: operatorKey });
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^error: /);
    expect(result.code).toBe(4);
    const record = await waitFor('the audit record of the refusal', async () =>
      (await audit()).find((r) => r.actor === `operator-${suffix}` && r.kind === 'shell'),
    );
    expect(record).toMatchObject({ device: deviceId, outcome: 'denied' });
  });

  it('the same operator’s exec into the app is allowed and audited with its exit code', async () => {
    const result = await remote.cli(['exec', deviceId, app, '--', 'sh', '-c', 'echo ok; exit 3'], { token: operatorKey });
    expect(result.stdout).toBe('ok\n');
    expect(result.code).toBe(3);
    const record = await waitFor('the audit record of the session', async () =>
      (await audit()).find((r) => r.actor === `operator-${suffix}` && r.kind === 'exec' && r.outcome !== 'open'),
    );
    expect(record).toMatchObject({ device: deviceId, outcome: 'exited', exitCode: 3 });
    expect(record.bytesUp).toBeGreaterThanOrEqual(3);
    expect(record.endedAt).toBeTruthy();
  });

  it('another device cannot subscribe to this device’s session topics; the refusal is audited', async () => {
    // A second registered device, whose own credentials are all the intruder has.
    const dataDir = scratchDir('flotilla-intruder-');
    const token = await remote.registrationToken();
    const registered = await runCli([
      '--hub',
      remote.hub.url,
      '--token',
      token,
      'agent',
      'register',
      '--device-id',
      intruderId,
      '--data-dir',
      dataDir,
    ]);
    expect(registered.code).toBe(0);
    const { secret } = JSON.parse(readFileSync(join(dataDir, 'agent.json'), 'utf8')) as { secret: string };

    const topics = new Topics();
    const client = await connectClient(remote.hub.mqttUrl, { clientId: intruderId, username: intruderId, password: secret });
    try {
      // mqtt.js turns a SUBACK of 128 (failure) into an error carrying the packet.
      const refused = await client.subscribeAsync(topics.deviceSessions(deviceId, 'down'), { qos: 0 }).then(
        () => undefined,
        (err: Error & { packet?: { granted?: number[] } }) => err.packet?.granted,
      );
      expect(refused).toEqual([128]);
      const record = await waitFor('the audit record of the refused subscribe', async () =>
        (await audit()).find((r) => r.kind === 'topic' && r.actor.includes(intruderId)),
      );
      expect(record.outcome).toBe('denied');
      expect(record.what).toContain(`devices/${deviceId}/sessions`);
    } finally {
      await client.endAsync(true);
    }
  });
});

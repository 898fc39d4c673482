/**
 * Who may not: end to end with a real hub, a registered agent and an app's
 * container on the real Docker Engine. A viewer's exec and an operator's host
 * shell are refused with exit 4 and nothing runs on the device; another
 * device's MQTT client cannot subscribe to this device's sessions. Every
 * refusal is an audit record an admin reads with `flotilla audit`.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { AuditRecord } from '../../../shared/api/results.js';
import { CHANNEL, encodeFrame, FRAME } from '../../../shared/remote/frames.js';
import { asBuffer } from '../../../shared/remote/node-bytes.js';
import { Topics } from '../../../shared/topics.js';
import { connectClient } from '../../support/mqtt-client.js';
import { CLI, runCli, scratchDir, stopAll } from '../../support/processes.js';
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

  /** A second registered device, whose own credentials are all the intruder has. */
  let intruderSecret: string | undefined;
  async function connectIntruder() {
    if (intruderSecret === undefined) {
      const dataDir = scratchDir('flotilla-intruder-');
      const token = await remote.registrationToken();
      const register = ['agent', 'register', '--device-id', intruderId, '--data-dir', dataDir];
      const registered = await runCli(['--hub', remote.hub.url, '--token', token, ...register]);
      expect(registered.code).toBe(0);
      intruderSecret = (JSON.parse(readFileSync(join(dataDir, 'agent.json'), 'utf8')) as { secret: string }).secret;
    }
    return connectClient(remote.hub.mqttUrl, { clientId: intruderId, username: intruderId, password: intruderSecret });
  }

  it('another device cannot subscribe to this device’s session topics; the refusal is audited', async () => {
    const topics = new Topics();
    const client = await connectIntruder();
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

  it('a third client that guessed a running session’s id gets nothing into it either way; the attempt is audited', async () => {
    const exec = spawn(process.execPath, [CLI, ...remote.globals(operatorKey), 'exec', deviceId, app, '-i', '--', 'cat'], {
      stdio: 'pipe',
    });
    let stdout = '';
    exec.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => exec.on('close', resolve));
    try {
      exec.stdin.write('one\n');
      await waitFor('the first line back', () => stdout === 'one\n');
      // The hub logs every session it opens with its id: the test plays an intruder who guessed it.
      const opened = remote.hub.proc.output
        .split('\n')
        .filter((line) => line.includes('remote-access session opened') && line.includes(`operator-${suffix}`) && line.includes('cat'))
        .at(-1);
      const sessionId = (JSON.parse(opened!) as { sessionId: string }).sessionId;

      const topics = new Topics();
      const forged = (text: string, seq: number) =>
        asBuffer(encodeFrame({ type: FRAME.data, seq, channel: CHANNEL.stdio, data: Buffer.from(text) }));
      for (const [direction, text] of [
        ['down', 'INJECTED\n'],
        ['up', 'FORGED\n'],
      ] as const) {
        // A fresh connection each way: the hub may drop a client after a refused publish.
        const client = await connectIntruder();
        try {
          // Every plausible next seq, so one of them would be in order if it got through.
          for (let seq = 0; seq < 16; seq++) {
            await client.publishAsync(topics.session(deviceId, sessionId, direction), forged(text, seq), { qos: 0 }).catch(() => undefined);
          }
        } finally {
          // A graceful end flushes what is still queued (a forced one would drop it); bounded, as the hub may have hung up.
          await Promise.race([client.endAsync().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 3_000))]);
          client.end(true);
        }
      }
      exec.stdin.end('two\n');
      expect(await exited).toBe(0);
      // Only what the opener sent came back, in order: no injected stdin, no forged output, no broken seq.
      expect(stdout).toBe('one\ntwo\n');
      const records = await waitFor('the audit records of the forged publishes', async () => {
        const found = (await audit()).filter((r) => r.kind === 'topic' && r.actor.includes(intruderId) && r.what.includes(sessionId));
        return found.length > 0 ? found : undefined;
      });
      for (const record of records) expect(record.outcome).toBe('denied');
    } finally {
      exec.kill('SIGKILL');
    }
  });
});

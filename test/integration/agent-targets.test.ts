/**
 * Agent targets against a real hub (Aedes, dispatcher, HTTP API, MQTT request API, SQLite) whose
 * releases dir holds real tarballs made by `tar`, and devices played by plain MQTT clients that
 * answer each desired agent section as their agent would (test/support/agent-target-devices.ts).
 */

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type AgentTargetView, type DesiredAgent, parseHubKey, type RolloutStatus, verifyDesired } from '../../shared/index.js';
import { type AgentDevice, agentDevice, type Behaviour, releaseScript, releasesDir } from '../support/agent-target-devices.js';
import { Cleanup } from '../support/cleanup.js';
import { appSpec } from '../support/fixtures.js';
import { http } from '../support/http.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { closeClient, connectClient, Inbox } from '../support/mqtt-client.js';
import { sampleValue, scrape } from '../support/prometheus.js';
import { waitFor } from '../support/wait.js';

const SLOW = { timeout: 90_000 };
const REQUEST = 'flotilla/v1/api/svc-1/request';
const RESPONSE = 'flotilla/v1/api/svc-1/response';

interface ApiResponse {
  correlationId: string;
  ok: boolean;
  result?: any;
  error?: { code: string; message: string };
}

describe('agent targets', SLOW, () => {
  const cleanup = new Cleanup();
  let hub: TestHub;
  let releases: string;
  let devices: AgentDevice[];
  let service: MqttClient;
  let responses: Inbox;
  let seq = 0;

  beforeEach(async () => {
    releases = releasesDir();
    hub = cleanup.add('hub', () => hub.close(), await startTestHub({ config: { releasesDir: releases }, deps: { rolloutTickMs: 100 } }));
    devices = [];
    service = cleanup.add('service client', () => closeClient(service), await connectClient(hub.mqttUrl, { clientId: 'svc-1' }));
    responses = new Inbox(service);
    await service.subscribeAsync(RESPONSE, { qos: 1 });
  });

  afterEach(() => cleanup.run());

  const api = (method: string, path: string, body?: unknown) => http(hub.httpUrl, method, path, body);
  const device = (id: string) => devices.find((d) => d.id === id)!;

  /** The MQTT request API, as a backend service calls it. */
  async function call(method: string, params?: Record<string, unknown>): Promise<ApiResponse> {
    const correlationId = `req-${++seq}`;
    await service.publishAsync(REQUEST, JSON.stringify({ correlationId, method, ...(params ? { params } : {}) }), { qos: 1 });
    return responses.waitFor<ApiResponse>(RESPONSE, (r) => r.correlationId === correlationId);
  }

  async function simDevice(
    id: string,
    arch: string,
    labels: Record<string, string>,
    behaviour: Behaviour = 'upgrades',
  ): Promise<AgentDevice> {
    const sim = await agentDevice(cleanup, hub.mqttUrl, id, arch, labels, behaviour);
    devices.push(sim);
    return sim;
  }

  const sent = (id: string) => device(id).sent();
  const lastSent = (id: string) => sent(id).at(-1);
  const waitAgent = (id: string, where: (agent: DesiredAgent | undefined) => boolean) =>
    waitFor(`${id}'s desired agent section`, () => {
      const last = lastSent(id);
      return last !== undefined && where(last.agent) && last;
    });

  const sha256 = (file: string) =>
    createHash('sha256')
      .update(readFileSync(join(releases, file)))
      .digest('hex');

  /** A fleet-wide pass the test can see end: an app for `id` alone, which it receives once that pass has run. */
  async function fleetPassSeenBy(id: string, name: string): Promise<void> {
    const before = sent(id).length;
    expect((await api('POST', '/api/v1/apps', appSpec(name, { only: id }))).status).toBe(200);
    await waitFor(`${id} receives app ${name}`, () =>
      sent(id)
        .slice(before)
        .some((d) => d.apps.some((a) => a.name === name)),
    );
  }

  it('over HTTP: each selected device gets a signed section with its arch’s tarball; the same call again republishes nothing; retry is a new revision', async () => {
    await simDevice('gw-1', 'amd64', { site: 'lab' });
    await simDevice('gw-2', 'arm64', { site: 'lab' });
    await simDevice('gw-3', 'amd64', { site: 'roof', only: 'gw-3' });

    const upgraded = await api('POST', '/api/v1/agent/targets', { selectors: { site: 'lab' }, version: '0.3.0' });
    expect(upgraded.status, JSON.stringify(upgraded.body)).toBe(200);
    expect(upgraded.body).toEqual({ name: 'site-lab', revision: 1, version: '0.3.0', changed: true });

    const hubKey = parseHubKey(hub.hub.hubKey);
    for (const [id, arch] of [
      ['gw-1', 'amd64'],
      ['gw-2', 'arm64'],
    ] as const) {
      const doc = await waitAgent(id, (agent) => agent?.revision === 1);
      const file = `flotilla-0.3.0-linux-${arch}.tar.gz`;
      expect(doc.agent).toEqual({
        version: '0.3.0',
        revision: 1,
        bundle: {
          url: `/releases/${file}`,
          sha256: sha256(file),
          bytes: statSync(join(releases, file)).size,
          unpackedBytes: expect.any(Number),
        },
      });
      expect(verifyDesired(doc, hubKey)).toBeUndefined();
      // The signature covers the section: a changed checksum no longer verifies.
      expect(verifyDesired({ ...doc, agent: { ...doc.agent!, bundle: { ...doc.agent!.bundle!, sha256: 'f'.repeat(64) } } }, hubKey)).toBe(
        'bad signature',
      );
      // The URL is the hub's own, serving that very file.
      const served = await fetch(`${hub.httpUrl}${doc.agent!.bundle!.url}`);
      expect(
        createHash('sha256')
          .update(Buffer.from(await served.arrayBuffer()))
          .digest('hex'),
      ).toBe(doc.agent!.bundle!.sha256);
    }
    // What the tar holds: two small files.
    expect(lastSent('gw-1')!.agent!.bundle!.unpackedBytes).toBe(
      releaseScript('0.3.0', 'amd64').length + JSON.stringify({ version: '0.3.0' }).length,
    );
    await waitFor('the lab devices report 0.3.0', async () => {
      const res = await api('GET', '/api/v1/devices/gw-1');
      return res.body.host?.agentVersion === '0.3.0' && res.body.desiredAgentVersion === '0.3.0';
    });

    const counts = { 'gw-1': sent('gw-1').length, 'gw-2': sent('gw-2').length };
    const again = await api('POST', '/api/v1/agent/targets', { selectors: { site: 'lab' }, version: '0.3.0' });
    expect(again.body).toEqual({ name: 'site-lab', revision: 1, version: '0.3.0', changed: false });
    await fleetPassSeenBy('gw-3', 'probe');
    expect({ 'gw-1': sent('gw-1').length, 'gw-2': sent('gw-2').length }).toEqual(counts);
    expect(sent('gw-3').every((d) => d.agent === undefined)).toBe(true);

    const retried = await api('POST', '/api/v1/agent/targets', { selectors: { site: 'lab' }, version: '0.3.0', retry: true });
    expect(retried.body).toEqual({ name: 'site-lab', revision: 2, version: '0.3.0', changed: true });
    await waitAgent('gw-1', (agent) => agent?.revision === 2 && agent.version === '0.3.0');
    await waitAgent('gw-2', (agent) => agent?.revision === 2);
  });

  it('over the MQTT API: the target set last wins, deleting it falls back, and targets, devices and Prometheus count it', async () => {
    await simDevice('gw-1', 'amd64', { site: 'lab' });
    await simDevice('gw-2', 'arm64', { site: 'lab' });
    await simDevice('gw-3', 'amd64', { site: 'roof' });

    const all = await call('agent.upgrade', { selectors: {}, version: '0.2.0', healthTimeout: '2m' });
    expect(all).toMatchObject({ ok: true, result: { name: 'all', revision: 1, version: '0.2.0', changed: true } });
    await waitAgent('gw-1', (agent) => agent?.version === '0.2.0' && agent.healthTimeout === '2m' && agent.bundle !== undefined);
    await waitAgent('gw-3', (agent) => agent?.version === '0.2.0');
    // No 0.2.0 tarball for arm64: the section names the version without a bundle, and the device says it cannot.
    expect((await waitAgent('gw-2', (agent) => agent?.version === '0.2.0')).agent).toEqual({
      version: '0.2.0',
      revision: 1,
      healthTimeout: '2m',
    });

    const one = await call('agent.upgrade', { devices: ['gw-1'], version: '0.3.0' });
    expect(one).toMatchObject({ ok: true, result: { name: 'device-gw-1', revision: 2, version: '0.3.0', changed: true } });
    await waitAgent('gw-1', (agent) => agent?.version === '0.3.0' && agent.revision === 2);

    const targets = async () => {
      const res = await call('agent.targets');
      return Object.fromEntries((res.result.items as AgentTargetView[]).map((t) => [t.name, t]));
    };
    await waitFor('the counts settle', async () => {
      const t = await targets();
      return t['device-gw-1']?.devices.running === 1 && t.all?.devices.failed === 1 && t.all.devices.running === 1;
    });
    const listed = await targets();
    expect(listed.all).toMatchObject({
      revision: 1,
      version: '0.2.0',
      scheduling: { selectors: {} },
      arches: ['amd64'],
      healthTimeout: '2m',
      devices: { matched: 2, running: 1, upgrading: 0, failed: 1, rolledBack: 0 },
    });
    expect(listed['device-gw-1']).toMatchObject({
      revision: 2,
      arches: ['amd64', 'arm64'],
      devices: { matched: 1, running: 1, upgrading: 0, failed: 0, rolledBack: 0 },
    });
    const gw2 = await api('GET', '/api/v1/devices/gw-2');
    expect(gw2.body).toMatchObject({ desiredAgentVersion: '0.2.0', agentUpgrade: { version: '0.2.0', revision: 1, phase: 'failed' } });

    const { families } = await scrape(hub.httpUrl);
    expect(sampleValue(families, 'flotilla_agent_version_devices', { version: '0.3.0' })).toBe(1);
    expect(sampleValue(families, 'flotilla_agent_version_devices', { version: '0.2.0' })).toBe(1);
    expect(sampleValue(families, 'flotilla_agent_version_devices', { version: '0.1.0' })).toBe(1);
    expect(sampleValue(families, 'flotilla_agent_upgrades', { phase: 'failed' })).toBe(1);
    expect(sampleValue(families, 'flotilla_agent_upgrades', { phase: 'rolled-back' })).toBe(0);

    expect(await call('agent.delete', { name: 'device-gw-1' })).toMatchObject({ ok: true, result: { name: 'device-gw-1', deleted: true } });
    await waitAgent('gw-1', (agent) => agent?.version === '0.2.0' && agent.revision === 1);
    expect(await call('agent.delete', { name: 'device-gw-1' })).toMatchObject({ ok: false, error: { code: 'not_found' } });
    expect((await targets())['device-gw-1']).toBeUndefined();
  });

  it('refuses a version the releases dir lacks, naming what it holds and how to add one, and a call that selects nothing', async () => {
    const unknown = await api('POST', '/api/v1/agent/targets', { selectors: { site: 'lab' }, version: '0.9.9' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.code).toBe('invalid_request');
    expect(unknown.body.error.message).toContain('agent 0.9.9');
    expect(unknown.body.error.message).toContain('0.2.0 (amd64), 0.3.0 (amd64, arm64)');
    expect(unknown.body.error.message).toContain('docker/release-bundle.sh');
    expect(unknown.body.error.message).toContain('--releases-dir');

    const overMqtt = await call('agent.upgrade', { devices: ['gw-1'], version: '0.9.9' });
    expect(overMqtt).toMatchObject({ ok: false, error: { code: 'invalid_request' } });
    expect(overMqtt.error?.message).toContain('0.2.0 (amd64), 0.3.0 (amd64, arm64)');

    const nothing = await api('POST', '/api/v1/agent/targets', { version: '0.3.0' });
    expect(nothing.status).toBe(400);
    expect(nothing.body.error.message).toBe('select devices: --selector, --device or --all');
    expect(await call('agent.upgrade', { devices: [], version: '0.3.0' })).toMatchObject({
      ok: false,
      error: { code: 'invalid_request', message: 'select devices: --selector, --device or --all' },
    });

    // An image alone is enough for agents that run as a container.
    const image = await call('agent.upgrade', {
      selectors: {},
      version: '0.9.9',
      image: `registry.local/flotilla/agent@sha256:${'a'.repeat(64)}`,
    });
    expect(image).toMatchObject({ ok: true, result: { name: 'all', version: '0.9.9' } });
    expect((await call('agent.targets')).result.items[0]).toMatchObject({ arches: [], image: expect.stringContaining('@sha256:') });
  });

  it('refuses a releases-dir file that is no gzipped tar, no release, or another version’s, naming it and the fix; logged once, never a 500', async () => {
    const releasesFile = (version: string) => join(releases, `flotilla-${version}-linux-amd64.tar.gz`);
    writeFileSync(releasesFile('0.5.0'), Buffer.from('this is not a tarball at all\n'.repeat(40)));
    const notGzip = await api('POST', '/api/v1/agent/targets', { selectors: { site: 'lab' }, version: '0.5.0' });
    expect(notGzip.status, JSON.stringify(notGzip.body)).toBe(400);
    expect(notGzip.body.error.code).toBe('invalid_request');
    expect(notGzip.body.error.message).toBe(
      `agent 0.5.0: flotilla-0.5.0-linux-amd64.tar.gz in the hub's releases dir ${releases} is not gzip data: incorrect header check; ` +
        'rebuild it with docker/release-bundle.sh <amd64|arm64> (it writes dist/bundles/flotilla-<version>-linux-<arch>.tar.gz)',
    );
    // Asked again over MQTT: the same answer, and the hub warned once.
    expect(await call('agent.upgrade', { devices: ['gw-1'], version: '0.5.0' })).toMatchObject({
      ok: false,
      error: { code: 'invalid_request', message: notGzip.body.error.message },
    });
    expect(hub.logs.matching('a release tarball in the releases dir is refused')).toEqual([
      expect.objectContaining({
        level: 40,
        file: 'flotilla-0.5.0-linux-amd64.tar.gz',
        problem: expect.stringContaining('incorrect header check'),
      }),
    ]);

    // A gzip cut in half.
    const whole = readFileSync(releasesFile('0.3.0'));
    writeFileSync(releasesFile('0.5.1'), whole.subarray(0, whole.length >> 1));
    const cut = await call('agent.upgrade', { selectors: {}, version: '0.5.1' });
    expect(cut).toMatchObject({ ok: false, error: { code: 'invalid_request' } });
    expect(cut.error?.message).toContain('flotilla-0.5.1-linux-amd64.tar.gz in the hub');
    expect(cut.error?.message).toContain('is cut short');

    // A valid tarball of one x.txt: not a release.
    const tree = join(releases, 'tree-x');
    mkdirSync(tree, { recursive: true });
    writeFileSync(join(tree, 'x.txt'), 'x');
    execFileSync('tar', ['-czf', releasesFile('0.3.2'), '-C', tree, 'x.txt']);
    const noRelease = await api('POST', '/api/v1/agent/targets', { selectors: {}, version: '0.3.2' });
    expect(noRelease.status).toBe(400);
    expect(noRelease.body.error.message).toContain(
      "flotilla-0.3.2-linux-amd64.tar.gz in the hub's releases dir " +
        `${releases} is not a flotilla release: it lacks flotilla/bin/flotilla and flotilla/package.json (it holds x.txt)`,
    );

    // 0.3.0's tarball copied under another version's name.
    copyFileSync(releasesFile('0.3.0'), releasesFile('0.7.0'));
    const renamed = await api('POST', '/api/v1/agent/targets', { selectors: {}, version: '0.7.0' });
    expect(renamed.status).toBe(400);
    expect(renamed.body.error.message).toContain('is not release 0.7.0: its flotilla/package.json has version "0.3.0"');

    // Nothing was stored, and the hub answers on.
    expect((await api('GET', '/api/v1/agent/targets')).body).toEqual({ items: [] });
    expect((await api('POST', '/api/v1/agent/targets', { selectors: {}, version: '0.3.0' })).status).toBe(200);
  });

  it('a canary that rolls back pauses the rollout (canary 1, failureThreshold 1) and the other devices never get the section', async () => {
    await simDevice('gw-1', 'amd64', { site: 'lab' }, 'rolls-back');
    await simDevice('gw-2', 'amd64', { site: 'lab' });
    await simDevice('gw-3', 'arm64', { site: 'lab', only: 'gw-3' });

    const started = await api('POST', '/api/v1/agent/targets', {
      selectors: { site: 'lab' },
      version: '0.3.0',
      rollout: { canary: 1, failureThreshold: 1 },
    });
    expect(started.body).toEqual({ name: 'site-lab', revision: 1, version: '0.3.0', changed: true, rollout: 'agent/site-lab' });

    // The canary is told, rolls back, and is sent back to "keep what you run" (no section).
    await waitFor('the canary told revision 1', () => sent('gw-1').some((d) => d.agent?.revision === 1));
    const paused = await waitFor('the rollout paused', async () => {
      const res = await api('GET', '/api/v1/agent/targets/site-lab/rollout');
      return res.body.phase === 'paused' && (res.body as RolloutStatus);
    });
    expect(paused.app).toBe('agent/site-lab');
    expect(paused.reason).toMatch(/1 device\(s\) failed at revision 1 \(failureThreshold 1\): gw-1/);
    expect(paused.devices.map((d) => [d.id, d.state, d.canary])).toEqual([
      ['gw-1', 'reverted', true],
      ['gw-2', 'pending', false],
      ['gw-3', 'pending', false],
    ]);
    await waitAgent('gw-1', (agent) => agent === undefined);
    // Sent back, the canary runs what it ran and reports no upgrade, as the agent does: the rollout still says what happened.
    await waitFor('gw-1 reports no upgrade', async () => (await api('GET', '/api/v1/devices/gw-1')).body.agentUpgrade === undefined);
    expect((await api('GET', '/api/v1/devices/gw-1')).body.agentRollout).toEqual({
      target: 'site-lab',
      revision: 1,
      phase: 'paused',
      state: 'reverted',
      message: 'reported rolled-back at revision 1',
    });
    const listedDevices = (await call('devices.list')).result.items as { id: string; agentRollout?: { state: string } }[];
    expect(listedDevices.map((d) => [d.id, d.agentRollout?.state])).toEqual([
      ['gw-1', 'reverted'],
      ['gw-2', 'pending'],
      ['gw-3', 'pending'],
    ]);
    await fleetPassSeenBy('gw-3', 'probe');
    expect(sent('gw-2').some((d) => d.agent !== undefined)).toBe(false);
    expect(sent('gw-3').some((d) => d.agent !== undefined)).toBe(false);

    const listed = (await api('GET', '/api/v1/agent/targets')).body.items[0] as AgentTargetView;
    expect(listed).toMatchObject({
      name: 'site-lab',
      rollout: { canary: 1, failureThreshold: 1 },
      devices: { matched: 3, running: 0, upgrading: 0, failed: 0, rolledBack: 1 },
    });

    // Resumed, the rest go on (the reverted canary stays back), one batch at a time.
    const resumed = await api('POST', '/api/v1/agent/targets/site-lab/rollout/resume');
    expect(resumed.status, JSON.stringify(resumed.body)).toBe(200);
    await waitAgent('gw-2', (agent) => agent?.revision === 1);
    await waitAgent('gw-3', (agent) => agent?.revision === 1 && agent.bundle?.url === '/releases/flotilla-0.3.0-linux-arm64.tar.gz');
    const done = await waitFor('the rollout complete', async () => {
      const res = await api('GET', '/api/v1/agent/targets/site-lab/rollout');
      return res.body.phase === 'complete' && (res.body as RolloutStatus);
    });
    expect(done.counts).toMatchObject({ healthy: 2, reverted: 1 });
    // Complete, the rollout has nothing more to say of its healthy devices; the one it sent back stays marked.
    expect((await api('GET', '/api/v1/devices/gw-2')).body.agentRollout).toBeUndefined();
    expect((await api('GET', '/api/v1/devices/gw-1')).body.agentRollout).toMatchObject({ phase: 'complete', state: 'reverted' });
    expect(lastSent('gw-1')!.agent).toBeUndefined();

    // Deleting the target deletes its rollout.
    expect((await api('DELETE', '/api/v1/agent/targets/site-lab')).status).toBe(200);
    expect((await api('GET', '/api/v1/agent/targets/site-lab/rollout')).status).toBe(404);
  });
  it('a rollout starts each device from what it is told (another target’s revision), pauses after the canary, and an abort sends the canary back', async () => {
    await simDevice('gw-1', 'amd64', { site: 'lab' });
    await simDevice('gw-2', 'amd64', { site: 'lab' });
    expect((await call('agent.upgrade', { selectors: {}, version: '0.2.0' })).result).toMatchObject({ name: 'all', revision: 1 });
    await waitAgent('gw-1', (agent) => agent?.revision === 1);
    await waitAgent('gw-2', (agent) => agent?.revision === 1);

    const lab = await call('agent.upgrade', {
      selectors: { site: 'lab' },
      version: '0.3.0',
      rollout: { canary: 1, pauseAfterCanary: true },
    });
    expect(lab.result).toMatchObject({ name: 'site-lab', revision: 2, rollout: 'agent/site-lab' });
    await waitAgent('gw-1', (agent) => agent?.revision === 2 && agent.version === '0.3.0');
    const paused = await waitFor('paused after the canary', async () => {
      const res = await call('agent.rollout.status', { name: 'site-lab' });
      return res.result?.phase === 'paused' && (res.result as RolloutStatus);
    });
    expect(paused.reason).toMatch(/canary done \(1\/1 healthy\)/);
    // gw-2 waits on the revision it was told, the `all` target's.
    expect(paused.devices.map((d) => [d.id, d.revision, d.state])).toEqual([
      ['gw-1', 2, 'healthy'],
      ['gw-2', 1, 'pending'],
    ]);
    expect(lastSent('gw-2')?.agent).toMatchObject({ version: '0.2.0', revision: 1 });

    expect((await call('agent.rollout.pause', { name: 'site-lab' })).result).toMatchObject({ phase: 'paused' });
    const aborted = await call('agent.rollout.abort', { name: 'site-lab' });
    expect(aborted.result).toMatchObject({ app: 'agent/site-lab', phase: 'aborted' });
    await waitAgent('gw-1', (agent) => agent?.version === '0.2.0' && agent.revision === 1);
    // Both are held back from site-lab's version: the canary sent back, gw-2 never sent.
    const site = await waitFor('gw-1 reports 0.2.0 again', async () => {
      const found = (await call('agent.targets')).result.items.find((t: AgentTargetView) => t.name === 'site-lab') as AgentTargetView;
      return found.devices.running === 0 && found;
    });
    expect(site.devices).toEqual({ matched: 2, running: 0, upgrading: 0, failed: 0, rolledBack: 1 });
    expect((await call('agent.rollout.resume', { name: 'site-lab' })).error).toMatchObject({ code: 'invalid_request' });
    expect((await call('agent.rollout.status', { name: 'all' })).error).toMatchObject({ code: 'not_found' });
    expect((await call('agent.rollout.status', { name: 'nothing' })).error).toMatchObject({ code: 'not_found' });
  });

  it('a rollout holds only the devices following its target: one a newer target takes leaves it, and a resume does not take it back', async () => {
    await simDevice('gw-1', 'amd64', { site: 'lab' }, 'rolls-back');
    await simDevice('gw-2', 'amd64', { site: 'lab' });
    await simDevice('gw-3', 'amd64', { site: 'lab' });
    // gw-3 follows a target set before site-lab: site-lab, set later, takes it.
    expect((await call('agent.upgrade', { devices: ['gw-3'], version: '0.2.0' })).result).toMatchObject({ revision: 1 });
    await waitAgent('gw-3', (agent) => agent?.revision === 1);
    const lab = await call('agent.upgrade', { selectors: { site: 'lab' }, version: '0.3.0', rollout: { canary: 1, failureThreshold: 1 } });
    expect(lab.result).toMatchObject({ name: 'site-lab', revision: 2 });
    const status = () => call('agent.rollout.status', { name: 'site-lab' }).then((r) => r.result as RolloutStatus);
    await waitFor('the canary failed and the rollout paused', async () => (await status()).phase === 'paused');
    expect((await status()).devices.map((d) => [d.id, d.state])).toEqual([
      ['gw-1', 'reverted'],
      ['gw-2', 'pending'],
      ['gw-3', 'pending'],
    ]);

    // gw-2 gets a target of its own, set after site-lab's: it is no longer site-lab's to roll out.
    expect((await call('agent.upgrade', { devices: ['gw-2'], version: '0.2.0' })).result).toMatchObject({
      name: 'device-gw-2',
      revision: 3,
    });
    await waitAgent('gw-2', (agent) => agent?.revision === 3 && agent.version === '0.2.0');
    const left = await waitFor('gw-2 leaves the paused rollout', async () => {
      const now = await status();
      return !now.devices.some((d) => d.id === 'gw-2') && now;
    });
    expect(left.devices.map((d) => d.id)).toEqual(['gw-1', 'gw-3']);
    expect(left.counts.total).toBe(2);

    // Resumed, the rollout goes on with gw-3 alone; gw-2 stays on its own target's revision.
    expect((await call('agent.rollout.resume', { name: 'site-lab' })).result.devices.map((d: { id: string }) => d.id)).toEqual([
      'gw-1',
      'gw-3',
    ]);
    await waitAgent('gw-3', (agent) => agent?.revision === 2 && agent.version === '0.3.0');
    const done = await waitFor('the rollout complete', async () => {
      const now = await status();
      return now.phase === 'complete' && now;
    });
    expect(done.devices.map((d) => [d.id, d.state])).toEqual([
      ['gw-1', 'reverted'],
      ['gw-3', 'healthy'],
    ]);
    expect(sent('gw-2').filter((d) => d.agent?.revision === 2)).toEqual([]);
    expect(lastSent('gw-2')?.agent).toMatchObject({ version: '0.2.0', revision: 3 });
  });

  it('an aborted rollout’s status, which no longer advances, leaves out a device a newer target took', async () => {
    await simDevice('gw-1', 'amd64', { site: 'lab' });
    await simDevice('gw-2', 'amd64', { site: 'lab' });
    await call('agent.upgrade', { selectors: { site: 'lab' }, version: '0.3.0', rollout: { canary: 1, pauseAfterCanary: true } });
    await waitFor(
      'paused after the canary',
      async () => (await call('agent.rollout.status', { name: 'site-lab' })).result?.phase === 'paused',
    );
    expect((await call('agent.rollout.abort', { name: 'site-lab' })).result.devices.map((d: { id: string }) => d.id)).toEqual([
      'gw-1',
      'gw-2',
    ]);

    expect((await call('agent.upgrade', { devices: ['gw-2'], version: '0.2.0' })).result).toMatchObject({
      name: 'device-gw-2',
      revision: 2,
    });
    await waitAgent('gw-2', (agent) => agent?.revision === 2);
    const aborted = (await call('agent.rollout.status', { name: 'site-lab' })).result as RolloutStatus;
    expect(aborted.phase).toBe('aborted');
    expect(aborted.devices.map((d) => [d.id, d.state])).toEqual([['gw-1', 'reverted']]);
    expect(aborted.counts).toMatchObject({ total: 1, reverted: 1, pending: 0 });
  });
});

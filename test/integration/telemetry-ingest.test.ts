/**
 * Telemetry from a device, as the hub stores and serves it: a real mqtt.js
 * device publishes logs, metrics and events to a real hub; the HTTP API
 * returns them once each (redeliveries deduplicated by seq), in order, with
 * `since`/`tail` windows; a follower on the SSE stream sees a line published
 * after it connected; a bad payload is dropped with its reason and changes
 * nothing.
 */
import type { MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EventRecord, LogRecord, MetricsSample, TopRow } from '../../shared/index.js';
import { Cleanup } from '../support/cleanup.js';
import { deviceState, logLine, metricsSample } from '../support/fixtures.js';
import { http } from '../support/http.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { closeClient, connectClient } from '../support/mqtt-client.js';
import { waitFor } from '../support/wait.js';

const T = (channel: string) => `flotilla/v1/devices/dev-1/${channel}`;

describe('telemetry ingest', () => {
  const cleanup = new Cleanup();
  let hub: TestHub;
  let device: MqttClient;

  beforeEach(async () => {
    hub = cleanup.add('hub', () => hub.close(), await startTestHub({ logLevel: 'info' }));
    device = await connectClient(hub.mqttUrl, { clientId: 'dev-1' });
    cleanup.add('device', () => closeClient(device));
    await device.publishAsync(T('state'), JSON.stringify(deviceState('dev-1')), { qos: 1, retain: true });
    await device.publishAsync(T('status'), JSON.stringify({ online: true, at: new Date().toISOString() }), { qos: 1, retain: true });
    await hub.logs.waitFor('device online', (r) => r.deviceId === 'dev-1');
  });

  afterEach(() => cleanup.run());

  const logs = async (query = '') =>
    (await http<{ lines: LogRecord[] }>(hub.httpUrl, 'GET', `/api/v1/devices/dev-1/logs${query}`)).body.lines;

  it('stores log batches once each, in order, with streams kept', async () => {
    const first = { seq: 1, lines: [logLine('booting'), logLine('no sensor on bus 1', { stream: 'stderr' })] };
    const second = { seq: 2, lines: [logLine('ready')] };
    await device.publishAsync(T('logs'), JSON.stringify(first), { qos: 1 });
    // A redelivery (same seq) after a lost PUBACK must not store the lines twice.
    await device.publishAsync(T('logs'), JSON.stringify(first), { qos: 1 });
    await device.publishAsync(T('logs'), JSON.stringify(second), { qos: 1 });

    const lines = await waitFor('three lines', async () => {
      const got = await logs();
      return got.length >= 3 && got;
    });
    expect(lines.map((l) => [l.stream, l.line])).toEqual([
      ['stdout', 'booting'],
      ['stderr', 'no sensor on bus 1'],
      ['stdout', 'ready'],
    ]);
    expect(lines.every((l) => l.device === 'dev-1' && l.app === 'thermo' && l.container === 'probe')).toBe(true);
    expect(await logs('?tail=1')).toMatchObject([{ line: 'ready' }]);
    expect(await logs(`?afterId=${lines[1]!.id}`)).toMatchObject([{ line: 'ready' }]);
  });

  it('windows logs by since, by app, and refuses a bad since', async () => {
    const old = new Date(Date.now() - 3_600_000).toISOString();
    await device.publishAsync(
      T('logs'),
      JSON.stringify({ seq: 1, lines: [logLine('an hour ago', { ts: old }), logLine('other app', { app: 'camera' }), logLine('now')] }),
      { qos: 1 },
    );
    await waitFor('stored', async () => (await logs()).length === 3);
    expect((await logs('?since=10m')).map((l) => l.line)).toEqual(['other app', 'now']);
    expect((await logs('?app=camera')).map((l) => l.line)).toEqual(['other app']);
    const bad = await http(hub.httpUrl, 'GET', '/api/v1/devices/dev-1/logs?since=yesterday');
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/invalid since "yesterday"/);
    expect((await http(hub.httpUrl, 'GET', '/api/v1/devices/nope/logs')).status).toBe(404);
  });

  it('stores events and metrics, and shows the newest sample in top', async () => {
    await device.publishAsync(
      T('events'),
      JSON.stringify({ seq: 7, ts: new Date().toISOString(), type: 'pulled', app: 'thermo', message: 'pulled in 1.2 s' }),
      {
        qos: 1,
      },
    );
    await device.publishAsync(T('metrics'), JSON.stringify(metricsSample(10)), { qos: 1 });
    await device.publishAsync(T('metrics'), JSON.stringify(metricsSample(11, { host: { ...metricsSample(0).host, cpuPercent: 77 } })), {
      qos: 1,
    });

    const events = await waitFor('event stored', async () => {
      const r = await http<{ events: EventRecord[] }>(hub.httpUrl, 'GET', '/api/v1/events?device=dev-1');
      return r.body.events.length > 0 && r.body.events;
    });
    expect(events).toMatchObject([{ device: 'dev-1', seq: 7, type: 'pulled', app: 'thermo', message: 'pulled in 1.2 s' }]);

    const samples = await waitFor('two samples', async () => {
      const r = await http<{ samples: MetricsSample[] }>(hub.httpUrl, 'GET', '/api/v1/devices/dev-1/metrics?since=1h');
      return r.body.samples.length === 2 && r.body.samples;
    });
    expect(samples.map((s) => s.host.cpuPercent)).toEqual([12.5, 77]);
    expect(samples[1]!.containers[0]).toMatchObject({ app: 'thermo', memBytes: 64 * 1024 ** 2 });

    const top = await http<{ devices: TopRow[] }>(hub.httpUrl, 'GET', '/api/v1/top');
    expect(top.body.devices).toEqual([
      expect.objectContaining({
        id: 'dev-1',
        online: true,
        cpuPercent: 77,
        memUsedBytes: 1024 ** 3,
        diskTotalBytes: 30 * 1024 ** 3,
        containers: 1,
      }),
    ]);
  });

  it('drops an invalid message with its reason and keeps ingesting', async () => {
    await device.publishAsync(T('logs'), JSON.stringify({ seq: 1, lines: [{ app: 'thermo', line: 'no stream' }] }), { qos: 1 });
    await device.publishAsync(T('metrics'), 'not json', { qos: 1 });
    const warning = await hub.logs.waitFor('invalid logs message dropped');
    expect(warning.reason).toMatch(/lines\[0\]\.container: is required/);
    await hub.logs.waitFor('invalid metrics message dropped');
    await device.publishAsync(T('logs'), JSON.stringify({ seq: 2, lines: [logLine('still here')] }), { qos: 1 });
    await waitFor('valid line stored', async () => (await logs()).some((l) => l.line === 'still here'));
    expect(await logs()).toHaveLength(1);
  });

  it('streams the backlog and then new lines to a follower (SSE)', async () => {
    await device.publishAsync(T('logs'), JSON.stringify({ seq: 1, lines: [logLine('before')] }), { qos: 1 });
    await waitFor('backlog stored', async () => (await logs()).length === 1);

    const abort = new AbortController();
    cleanup.add('follower', () => abort.abort());
    const res = await fetch(`${hub.httpUrl}/api/v1/devices/dev-1/logs?follow=true`, { signal: abort.signal });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    const readUntil = async (needle: string) => {
      while (!text.includes(needle)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before "${needle}"; got: ${text}`);
        text += decoder.decode(value, { stream: true });
      }
    };
    await readUntil('"before"');
    await device.publishAsync(T('logs'), JSON.stringify({ seq: 2, lines: [logLine('after', { stream: 'stderr' })] }), { qos: 1 });
    await readUntil('"after"');
    const records = text
      .split('\n\n')
      .filter((block) => block.startsWith('event: log'))
      .map((block) => JSON.parse(block.split('\ndata: ')[1]!) as LogRecord);
    expect(records.map((r) => [r.stream, r.line])).toEqual([
      ['stdout', 'before'],
      ['stderr', 'after'],
    ]);
  });
});

/**
 * `until` ends a logs or events window (`docker logs --until`): a real hub,
 * a device that is a plain MQTT.js client publishing lines and events stamped
 * hours apart, read back over HTTP and through the real CLI. The end is
 * inclusive; an end before the start and an end on a follow stream are
 * refused with a message that says why.
 */
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DeviceEvent, type EventRecord, type LogRecord, Topics } from '../../shared/index.js';
import { deviceState, logLine } from '../support/fixtures.js';
import { http } from '../support/http.js';
import { startTestHub, type TestHub } from '../support/hub.js';
import { closeClient, connectClient } from '../support/mqtt-client.js';
import { type RunResult, runCli } from '../support/processes.js';
import { waitFor } from '../support/wait.js';

/** Each CLI run starts node and tsx (about a second on a busy two-core machine). */
const SLOW = { timeout: 60_000 };
const DEVICE = 'pi-until';
const topics = new Topics();
const START = Date.now();
const minutesAgo = (minutes: number) => new Date(START - minutes * 60_000).toISOString();
/** The line straddling the `until` of an RFC 3339 window, to show the end is inclusive. */
const SEVENTY = minutesAgo(70);

let hub: TestHub;
let device: MqttClient;

const logs = async (query: string) => {
  const res = await http<{ lines: LogRecord[] }>(hub.httpUrl, 'GET', `/api/v1/devices/${DEVICE}/logs${query}`);
  expect(res.status).toBe(200);
  return res.body.lines.map((l) => l.line);
};
const events = async (query: string) => {
  const res = await http<{ events: EventRecord[] }>(hub.httpUrl, 'GET', `/api/v1/events?device=${DEVICE}${query}`);
  expect(res.status).toBe(200);
  return res.body.events.map((e) => e.message);
};
const flotilla = (args: string[]): Promise<RunResult> => runCli(args, { env: { FLOTILLA_HUB: hub.httpUrl, NO_COLOR: '1' } });

beforeAll(async () => {
  hub = await startTestHub();
  device = await connectClient(hub.mqttUrl, { clientId: DEVICE });
  await device.publishAsync(topics.device(DEVICE, 'state'), JSON.stringify(deviceState(DEVICE)), { qos: 1, retain: true });
  await device.publishAsync(topics.device(DEVICE, 'status'), JSON.stringify({ online: true, at: new Date().toISOString() }), {
    qos: 1,
    retain: true,
  });
  // The second batch holds lines on both sides of a one-hour-ago end: the end cuts inside a batch.
  const batches = [
    [logLine('three hours ago', { ts: minutesAgo(180) }), logLine('ninety minutes ago', { ts: minutesAgo(90) })],
    [logLine('seventy minutes ago', { ts: SEVENTY }), logLine('thirty minutes ago', { ts: minutesAgo(30) })],
    [logLine('just now', { ts: minutesAgo(0) })],
  ];
  for (const [n, lines] of batches.entries()) {
    await device.publishAsync(topics.device(DEVICE, 'logs'), JSON.stringify({ seq: n + 1, lines }), { qos: 1 });
  }
  const stamped: [number, string][] = [
    [180, 'pulled three hours ago'],
    [90, 'started ninety minutes ago'],
    [70, 'healthy seventy minutes ago'],
    [30, 'restarted thirty minutes ago'],
  ];
  for (const [n, [minutes, message]] of stamped.entries()) {
    const event: DeviceEvent = { seq: n + 1, ts: minutesAgo(minutes), type: 'started', app: 'thermo', message };
    await device.publishAsync(topics.device(DEVICE, 'events'), JSON.stringify(event), { qos: 1 });
  }
  await waitFor('the telemetry stored', async () => (await logs('')).length === 5 && (await events('')).length === 4);
});

afterAll(async () => {
  if (device) await closeClient(device);
  await hub?.close();
});

describe('until over HTTP', () => {
  it('ends a logs window, inside a batch, inclusive of a line stamped exactly at it', async () => {
    expect(await logs('?since=2h&until=1h')).toEqual(['ninety minutes ago', 'seventy minutes ago']);
    expect(await logs('?until=1h')).toEqual(['three hours ago', 'ninety minutes ago', 'seventy minutes ago']);
    expect(await logs('?until=1h&tail=1')).toEqual(['seventy minutes ago']);
    expect(await logs(`?since=2h&until=${encodeURIComponent(SEVENTY)}`)).toEqual(['ninety minutes ago', 'seventy minutes ago']);
    const justBefore = new Date(Date.parse(SEVENTY) - 1).toISOString();
    expect(await logs(`?since=2h&until=${encodeURIComponent(justBefore)}`)).toEqual(['ninety minutes ago']);
  });

  it('ends an events window, and with tail gives the newest before the end', async () => {
    expect(await events('&since=2h&until=1h')).toEqual(['started ninety minutes ago', 'healthy seventy minutes ago']);
    expect(await events('&until=1h&tail=1')).toEqual(['healthy seventy minutes ago']);
    expect(await events(`&until=${encodeURIComponent(SEVENTY)}&tail=1`)).toEqual(['healthy seventy minutes ago']);
  });

  it('refuses an until before since, a bad until, and until on a follow stream', async () => {
    for (const path of [`/api/v1/devices/${DEVICE}/logs?since=1h&until=2h`, '/api/v1/events?since=1h&until=2h']) {
      const swapped = await http(hub.httpUrl, 'GET', path);
      expect(swapped.status).toBe(400);
      expect(swapped.body.error).toMatchObject({
        code: 'invalid_request',
        message: 'until (2h) is before since (1h): the window would be empty',
      });
    }
    const bad = await http(hub.httpUrl, 'GET', `/api/v1/devices/${DEVICE}/logs?until=soon`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/invalid until "soon"/);
    for (const path of [`/api/v1/devices/${DEVICE}/logs?follow=true&until=1h`, '/api/v1/events?follow=true&until=1h']) {
      const follow = await http(hub.httpUrl, 'GET', path);
      expect(follow.status).toBe(400);
      expect(follow.headers.get('content-type')).toMatch(/json/);
      expect(follow.body.error).toMatchObject({
        code: 'invalid_request',
        message: expect.stringMatching(/until cannot be used with follow/),
      });
    }
  });
});

describe('--until in the CLI', SLOW, () => {
  it('flotilla logs --since --until prints only the lines in the window', async () => {
    const result = await flotilla(['logs', DEVICE, '--since', '2h', '--until', '1h']);
    expect(result).toEqual({
      code: 0,
      stdout: 'thermo/probe | ninety minutes ago\nthermo/probe | seventy minutes ago\n',
      stderr: '',
    });
  });

  it('flotilla events --until --tail prints the newest event before the end', async () => {
    const result = await flotilla(['events', DEVICE, '--until', '1h', '--tail', '1', '-o', 'json']);
    expect(result.code).toBe(0);
    expect((JSON.parse(result.stdout) as { events: EventRecord[] }).events.map((e) => e.message)).toEqual(['healthy seventy minutes ago']);
  });

  it('refuses --until with -f before asking the hub, and an until before since, with exit 2', async () => {
    for (const command of ['logs', 'events']) {
      const follow = await flotilla([command, DEVICE, '--until', '1h', '-f']);
      expect(follow).toEqual({
        code: 2,
        stdout: '',
        stderr: 'error: --until cannot be used with --follow: following has no end (drop -f to read up to --until)\n',
      });
    }
    const swapped = await flotilla(['logs', DEVICE, '--since', '1h', '--until', '2h']);
    expect(swapped.code).toBe(2);
    expect(swapped.stderr).toMatch(/^error: .*until \(2h\) is before since \(1h\)/);
  });
});

/**
 * The CLI against the real hub (Aedes, HTTP API, the session relay, the
 * audit store, SQLite; started in this process): a device played by a plain
 * MQTT.js client that answers `session.open` on its commands topic and
 * speaks frames on the session topics, as the agent does. What is checked is
 * what the operator sees: output, exit codes, refusals by role, and the
 * audit trail `flotilla audit` shows.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../../shared/api/results.js';
import { type Command, Topics } from '../../../shared/index.js';
import { FRAME, type Frame, type FrameBody, FrameReceiver, FrameSender } from '../../../shared/remote/frames.js';
import { asBuffer } from '../../../shared/remote/node-bytes.js';
import type { SessionOpenArgs } from '../../../shared/remote/requests.js';
import { Cleanup } from '../../support/cleanup.js';
import { deviceState } from '../../support/fixtures.js';
import { http } from '../../support/http.js';
import { startTestHub, type TestHub } from '../../support/hub.js';
import { closeClient, connectClient } from '../../support/mqtt-client.js';
import { type RunResult, runCli } from '../../support/processes.js';
import { waitFor } from '../../support/wait.js';

const SLOW = { timeout: 60_000 };
const topics = new Topics();
const cleanup = new Cleanup();
let hub: TestHub;
const keys: Record<'admin' | 'operator' | 'viewer', string> = { admin: '', operator: '', viewer: '' };

/**
 * A device that runs every exec as `tr a-z A-Z`: stdin comes back upper-cased
 * on stdout once stdin ends, then EXIT with code 3.
 */
async function upperCasingDevice(id: string): Promise<MqttClient> {
  const client = await connectClient(hub.mqttUrl, { clientId: id });
  cleanup.add(`device ${id}`, () => closeClient(client));
  const sessions = new Map<string, { sender: FrameSender; receiver: FrameReceiver; stdin: Buffer[] }>();
  client.on('message', (topic, payload) => {
    if (topic === topics.device(id, 'commands')) {
      const command = JSON.parse(payload.toString()) as Command;
      if (command.type !== 'session.open') return;
      const args = command.args as unknown as SessionOpenArgs;
      const up = topics.session(id, args.sessionId, 'up');
      sessions.set(args.sessionId, {
        sender: new FrameSender((bytes) => client.publish(up, asBuffer(bytes), { qos: 0 })),
        receiver: new FrameReceiver(),
        stdin: [],
      });
      client.publish(
        topics.device(id, 'replies'),
        JSON.stringify({ commandId: command.id, ok: true, result: { sessionId: args.sessionId } }),
        {
          qos: 1,
        },
      );
      return;
    }
    const parsed = topics.parse(topic);
    if (parsed?.kind !== 'session') return;
    const session = sessions.get(parsed.sessionId);
    if (!session) return;
    const decoded = session.receiver.receive(payload);
    if (!decoded.ok) throw new Error(decoded.reason);
    const frame: Frame = decoded.frame;
    const send = (body: FrameBody) => session.sender.send(body);
    if (frame.type === FRAME.data && frame.channel === 1) session.stdin.push(asBuffer(frame.data));
    if (frame.type === FRAME.eof && frame.channel === 1) {
      send({ type: FRAME.data, channel: 1, data: Buffer.from(Buffer.concat(session.stdin).toString().toUpperCase()) });
      send({ type: FRAME.exit, channel: 0, code: 3 });
    }
  });
  await client.subscribeAsync(topics.device(id, 'commands'), { qos: 1 });
  await client.subscribeAsync(topics.deviceSessions(id, 'down'), { qos: 0 });
  await client.publishAsync(topics.device(id, 'state'), JSON.stringify(deviceState(id)), { qos: 1, retain: true });
  await client.publishAsync(topics.device(id, 'status'), JSON.stringify({ online: true, at: new Date().toISOString() }), {
    qos: 1,
    retain: true,
  });
  return client;
}

function flotilla(as: keyof typeof keys, args: string[], input?: string): Promise<RunResult> {
  return runCli(args, {
    env: { FLOTILLA_HUB: hub.httpUrl, FLOTILLA_TOKEN: keys[as], NO_COLOR: '1' },
    ...(input !== undefined ? { input } : {}),
  });
}

beforeAll(async () => {
  hub = await startTestHub();
  cleanup.add('hub', () => hub.close());
  keys.admin = readFileSync(join(hub.dataDir, 'admin.key'), 'utf8').trim();
  for (const role of ['operator', 'viewer'] as const) {
    const res = await http(
      hub.httpUrl,
      'POST',
      '/api/v1/serviceaccounts',
      { name: `ci-${role}`, role },
      { authorization: `Bearer ${keys.admin}` },
    );
    keys[role] = (res.body as { key: string }).key;
  }
  await upperCasingDevice('pi-1');
  // Known to the hub, but not connected.
  const gone = await connectClient(hub.mqttUrl, { clientId: 'pi-2' });
  await gone.publishAsync(topics.device('pi-2', 'state'), JSON.stringify(deviceState('pi-2')), { qos: 1, retain: true });
  await closeClient(gone);
  for (const id of ['pi-1', 'pi-2']) {
    await waitFor(
      `${id} known`,
      async () =>
        (await http(hub.httpUrl, 'GET', `/api/v1/devices/${id}`, undefined, { authorization: `Bearer ${keys.admin}` })).status === 200,
    );
  }
}, 60_000);
afterAll(() => cleanup.run());

describe('flotilla exec through the hub', () => {
  it("passes stdin to the device, prints what it sends back, and exits with the command's code", SLOW, async () => {
    const result = await flotilla('operator', ['exec', '-i', 'pi-1', 'web', '--', 'tr', 'a-z', 'A-Z'], 'hello\n');
    expect(result).toEqual({ code: 3, stdout: 'HELLO\n', stderr: '' });
  });

  it('is refused for a viewer (exit 4), for an unknown device (exit 3) and for an offline one (exit 1)', SLOW, async () => {
    const viewer = await flotilla('viewer', ['exec', 'pi-1', 'web', '--', 'true']);
    expect(viewer.code).toBe(4);
    expect(viewer.stderr).toContain('error: exec in web: true needs role operator; ci-viewer is viewer');
    const unknown = await flotilla('operator', ['exec', 'nope', 'web', '--', 'true']);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toContain('error: no device "nope"');
    const offline = await flotilla('operator', ['exec', 'pi-2', 'web', '--', 'true']);
    expect(offline.code).toBe(1);
    expect(offline.stderr).toContain('error: device pi-2 is not connected to the hub');
  });

  it("refuses an operator a host shell and a host port (admin's)", SLOW, async () => {
    const shell = await flotilla('operator', ['shell', 'pi-1']);
    expect(shell.code).toBe(4);
    expect(shell.stderr).toContain('error: host shell needs role admin; ci-operator is operator');
    const proxy = await flotilla('operator', ['ssh-proxy', 'pi-1', '22']);
    expect(proxy.code).toBe(4);
    expect(proxy.stderr).toContain('error: port-forward to host port 22 needs role admin');
  });

  it('refuses a bad token with exit 4', SLOW, async () => {
    const result = await runCli(['exec', 'pi-1', 'web', '--', 'true'], { env: { FLOTILLA_HUB: hub.httpUrl, FLOTILLA_TOKEN: 'not-a-key' } });
    expect(result.code).toBe(4);
    expect(result.stderr).toContain('error:');
  });
});

describe('flotilla audit', () => {
  it('shows the sessions and refusals above, newest first, as a table and as JSON', SLOW, async () => {
    const json = await flotilla('admin', ['audit', '-o', 'json']);
    expect(json.code).toBe(0);
    const { items } = JSON.parse(json.stdout) as { items: AuditRecord[] };
    const starts = items.map((r) => r.startedAt);
    expect(starts).toEqual([...starts].sort().reverse());
    const exited = items.find((r) => r.outcome === 'exited');
    expect(exited).toMatchObject({ actor: 'ci-operator', device: 'pi-1', kind: 'exec', what: 'exec in web: tr a-z A-Z', exitCode: 3 });
    expect(exited?.bytesDown).toBe('hello\n'.length);
    expect(exited?.bytesUp).toBe('HELLO\n'.length);
    expect(items.filter((r) => r.outcome === 'denied').map((r) => r.actor)).toEqual(expect.arrayContaining(['ci-viewer', 'ci-operator']));

    const table = await flotilla('admin', ['audit', '--device', 'pi-1', '--since', '1h']);
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^TIME +ACTOR +DEVICE +KIND +WHAT +OUTCOME +EXIT +BYTES ↑\/↓ +DURATION$/);
    expect(lines.some((line) => /ci-operator +pi-1 +exec +exec in web: tr a-z A-Z +exited +3 +6 B\/6 B +\d/.test(line))).toBe(true);
    expect(lines.slice(1).every((line) => line.includes(' pi-1 '))).toBe(true);

    const limited = await flotilla('admin', ['audit', '--limit', '1', '-o', 'json']);
    expect((JSON.parse(limited.stdout) as { items: AuditRecord[] }).items).toHaveLength(1);
  });

  it('is for admins only (exit 4)', SLOW, async () => {
    const result = await flotilla('operator', ['audit']);
    expect(result.code).toBe(4);
  });
});

/**
 * A killed replica's remote-access sessions end on their devices too: the replica that finds it
 * gone ends its sessions in the audit trail as `hub_lost` and sends each device the session's
 * `session.close`, as the opener's replica would have, so the process behind it is stopped rather
 * than left to the agent's idle timeout. Two real replica processes on a private Redis and
 * PostgreSQL, a real WebSocket opener on the replica that is killed, and a device played by a real
 * MQTT.js client on the other replica, logged in with its own credentials, that answers
 * `session.open` and records every command it gets.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type AuditRecord, type Command, type List, Topics } from '../../shared/index.js';
import type { SessionOpenArgs, SessionRequest } from '../../shared/remote/index.js';
import { bearer } from '../support/auth.js';
import { Cleanup } from '../support/cleanup.js';
import { http } from '../support/http.js';
import { closeClient, connectClient } from '../support/mqtt-client.js';
import type { HubProcess } from '../support/processes.js';
import { startReplicaHubs } from '../support/replica-hubs.js';
import { waitFor } from '../support/wait.js';

const topics = new Topics();
const DEVICE = 'orphan-dev';
const execSleep: SessionRequest = { kind: 'exec', app: 'web', command: ['sleep', '1000'], tty: false, stdin: false };

/** The replica's name, from its ready line. */
function replicaName(hub: HubProcess): string {
  const line = hub.proc.output.split('\n').find((l) => l.includes('"msg":"hub ready"'));
  const name = line && (JSON.parse(line) as { replica?: string }).replica;
  if (!name) throw new Error(`the hub did not log its name (output: ${hub.proc.output.slice(-500)})`);
  return name;
}

describe("a killed replica's remote-access sessions, on their devices", () => {
  const cleanup = new Cleanup();
  let opener: HubProcess;
  let survivor: HubProcess;
  let admin: string;
  let device: MqttClient;
  const commands: Command[] = [];

  beforeAll(async () => {
    const { replicas } = await startReplicaHubs(cleanup, { count: 2, name: 'session-orphans' });
    [opener, survivor] = [replicas[0]!, replicas[1]!];
    // Statuses are recorded by the leader: one leads before the device says it is online.
    await waitFor('a leader', () => replicas.some((hub) => hub.proc.output.includes('"msg":"leading the dispatcher"')), {
      timeoutMs: 20_000,
    });
    admin = readFileSync(join(opener.dataDir, 'admin.key'), 'utf8').trim();
    const { token } = (await http(survivor.url, 'POST', '/api/v1/tokens', {}, bearer(admin))).body as { token: string };
    const registered = await http(survivor.url, 'POST', '/api/v1/register', { token, deviceId: DEVICE, labels: {} });
    expect(registered.status).toBe(200);
    const { secret } = registered.body as { secret: string };
    device = await connectClient(survivor.mqttUrl, { clientId: DEVICE, username: DEVICE, password: secret });
    cleanup.add('device', () => closeClient(device));
    device.on('message', (topic, payload) => {
      if (topic !== topics.device(DEVICE, 'commands')) return;
      const command = JSON.parse(payload.toString()) as Command;
      commands.push(command);
      if (command.type !== 'session.open') return;
      const { sessionId } = command.args as unknown as SessionOpenArgs;
      const reply = { commandId: command.id, ok: true, result: { sessionId, container: 'web_main' } };
      device.publish(topics.device(DEVICE, 'replies'), JSON.stringify(reply), { qos: 1 });
    });
    await device.subscribeAsync(topics.device(DEVICE, 'commands'), { qos: 1 });
    // As an agent says it is online once connected.
    await device.publishAsync(topics.device(DEVICE, 'status'), JSON.stringify({ online: true, at: new Date().toISOString() }), {
      qos: 1,
      retain: true,
    });
    // The opener's replica opens sessions only to devices it can see online (here, through the database).
    await waitFor('the device online on the opener replica', async () => {
      const res = await http(opener.url, 'GET', `/api/v1/devices/${DEVICE}`, undefined, bearer(admin));
      return (res.body as { online?: boolean }).online === true;
    });
  }, 90_000);
  afterAll(() => cleanup.run());

  const auditOn = async (hub: HubProcess) =>
    ((await http(hub.url, 'GET', '/api/v1/audit?limit=10', undefined, bearer(admin))).body as List<AuditRecord>).items;

  it('are closed on the device by the replica that finds the opener gone, naming it', { timeout: 90_000 }, async () => {
    const name = replicaName(opener);
    expect(replicaName(survivor)).not.toBe(name);
    const ws = new WebSocket(`${opener.url.replace('http:', 'ws:')}/api/v1/devices/${DEVICE}/sessions`, { headers: bearer(admin) });
    cleanup.add('opener socket', () => ws.terminate());
    const texts: Record<string, unknown>[] = [];
    ws.on('message', (data, isBinary) => {
      if (!isBinary) texts.push(JSON.parse(data.toString()) as Record<string, unknown>);
    });
    ws.on('error', () => undefined);
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    ws.send(JSON.stringify(execSleep));
    const ready = await waitFor('the session opened', () => texts[0], { timeoutMs: 15_000 });
    expect(ready).toMatchObject({ type: 'opened', container: 'web_main' });
    const open = commands.find((c) => c.type === 'session.open');
    const { sessionId } = open!.args as unknown as SessionOpenArgs;
    expect((await auditOn(survivor))[0]).toMatchObject({ device: DEVICE, outcome: 'open' });
    // An open session is left alone while its replica lives.
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    expect(commands.filter((c) => c.type === 'session.close')).toEqual([]);

    await opener.proc.stop(true);
    const killedAt = Date.now();
    const close = await waitFor('session.close on the device', () => commands.find((c) => c.type === 'session.close'), {
      timeoutMs: 45_000,
      intervalMs: 100,
    });
    const tookMs = Date.now() - killedAt;
    expect(close.args).toEqual({ sessionId, reason: `replica ${name} stopped while the session ran` });
    // Not before the opener had been missing for the sweep's 15 s.
    expect(tookMs).toBeGreaterThanOrEqual(15_000);
    expect((await auditOn(survivor)).find((r) => r.device === DEVICE)).toMatchObject({
      outcome: 'hub_lost',
      reason: `replica ${name} stopped while the session ran`,
    });
    // Told once: the survivor forgot the session as it told the device, and later sweeps send nothing more.
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    expect(commands.filter((c) => c.type === 'session.close')).toHaveLength(1);
    expect(survivor.proc.output).toMatch(/"devicesTold":1,.*"msg":"sessions left open by a replica that is gone were ended"/);
  });
});

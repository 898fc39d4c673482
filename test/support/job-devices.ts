/**
 * For the hub's job tests: devices played by plain MQTT clients, as far as the hub can see an
 * agent. Each says it is online on connect (its will says offline), publishes its retained state
 * and keeps every signed desired document it is sent; the test decides what it reports of each
 * job execution (`report`), as the agent would once it ran it. A device can go away and come back
 * under the same id, keeping the documents it had.
 */
import type { MqttClient } from 'mqtt';
import type { DesiredJob, DesiredState, DeviceState, JobExecutionReport } from '../../shared/index.js';
import type { Cleanup } from './cleanup.js';
import { deviceState } from './fixtures.js';
import { closeClient, connectClient } from './mqtt-client.js';
import { waitFor } from './wait.js';

export interface JobDevice {
  id: string;
  /** What it reports, `jobs` included. */
  state: DeviceState;
  /** Every desired document it was sent, in order, across reconnects. */
  sent(): DesiredState[];
  /** The jobs of the newest document it holds. */
  jobs(): DesiredJob[];
  /** Waits for a document whose jobs satisfy `where`; returns that document. */
  waitJobs(what: string, where: (jobs: DesiredJob[]) => boolean, timeoutMs?: number): Promise<DesiredState>;
  /** Publishes its state with these executions (what the agent reports until the document drops them). */
  report(jobs: JobExecutionReport[]): Promise<void>;
  /** Closes its connection as a device losing its link would (its will marks it offline). */
  goAway(): Promise<void>;
  /** Connects again under the same id, says it is online and reports its state. */
  comeBack(): Promise<void>;
}

const topic = (id: string, channel: string) => `flotilla/v1/devices/${id}/${channel}`;

/** A device on `mqttUrl`; resolves once it holds its first desired document. */
export async function jobDevice(cleanup: Cleanup, mqttUrl: string, id: string, labels: Record<string, string>): Promise<JobDevice> {
  const documents: DesiredState[] = [];
  const state = deviceState(id, { labels });
  let client: MqttClient | undefined;

  const publishState = async () => {
    if (!client || client.disconnected) return;
    await client.publishAsync(topic(id, 'state'), JSON.stringify({ ...state, reportedAt: new Date().toISOString() }), {
      qos: 1,
      retain: true,
    });
  };

  const connect = async () => {
    const offline = JSON.stringify({ online: false, at: new Date().toISOString() });
    const next = await connectClient(mqttUrl, {
      clientId: id,
      will: { topic: topic(id, 'status'), payload: Buffer.from(offline), qos: 1, retain: true },
    });
    client = next;
    cleanup.add(`device ${id}`, () => closeClient(next));
    next.on('message', (received, payload) => {
      if (received !== topic(id, 'desired')) return;
      const desired = JSON.parse(payload.toString()) as DesiredState;
      if (documents.at(-1)?.revision === desired.revision) return;
      documents.push(desired);
      state.observedRevision = desired.revision;
      // A device that goes away with this in flight simply has not reported it.
      publishState().catch(() => undefined);
    });
    await next.subscribeAsync(topic(id, 'desired'), { qos: 1 });
    await next.publishAsync(topic(id, 'status'), JSON.stringify({ online: true, at: new Date().toISOString() }), { qos: 1, retain: true });
    await publishState();
  };

  await connect();
  await waitFor(`${id}'s first desired document`, () => documents.length > 0, { timeoutMs: 30_000 });

  const device: JobDevice = {
    id,
    state,
    sent: () => documents,
    jobs: () => documents.at(-1)?.jobs ?? [],
    waitJobs: (what, where, timeoutMs = 30_000) =>
      waitFor(
        `${id}: ${what}`,
        () => {
          const last = documents.at(-1);
          return last !== undefined && where(last.jobs ?? []) && last;
        },
        { timeoutMs },
      ),
    report: async (jobs) => {
      state.jobs = jobs;
      await publishState();
    },
    goAway: async () => {
      if (client) await client.endAsync(true);
    },
    comeBack: connect,
  };
  return device;
}

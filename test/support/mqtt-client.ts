/**
 * Plain mqtt.js clients (MQTT 3.1.1), as a backend service, a device or a
 * dashboard would use them, plus an inbox that records what they receive.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { waitFor } from './wait.js';

let counter = 0;

/** Connects with MQTT 3.1.1, no automatic reconnect (a test decides when a client goes away). */
export function connectClient(url: string, options: IClientOptions = {}): Promise<MqttClient> {
  counter += 1;
  return mqtt.connectAsync(url, {
    protocolVersion: 4,
    clientId: `it-${process.pid}-${counter}`,
    reconnectPeriod: 0,
    connectTimeout: 5_000,
    ...options,
  });
}

export interface Received {
  topic: string;
  payload: Buffer;
  retain: boolean;
  /** The payload parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

/** Every message a client receives, in arrival order. */
export class Inbox {
  readonly messages: Received[] = [];

  constructor(client: MqttClient) {
    client.on('message', (topic, payload, packet) => {
      let json: unknown;
      try {
        json = JSON.parse(payload.toString('utf8'));
      } catch {
        json = undefined;
      }
      this.messages.push({ topic, payload, retain: packet.retain, json });
    });
  }

  on(topic: string): Received[] {
    return this.messages.filter((m) => m.topic === topic);
  }

  /** Waits for a message on `topic` whose JSON payload satisfies `where`; returns that payload. */
  async waitFor<T = Record<string, unknown>>(topic: string, where: (payload: T) => boolean = () => true, timeoutMs = 10_000): Promise<T> {
    try {
      const found = await waitFor(
        `a matching message on ${topic}`,
        () => this.on(topic).find((m) => m.json !== undefined && where(m.json as T)),
        {
          timeoutMs,
          intervalMs: 20,
        },
      );
      return found.json as T;
    } catch (err) {
      const last = this.on(topic).slice(-3);
      throw new Error(
        `${(err as Error).message}; last received there: ${last.map((m) => m.payload.toString().slice(0, 300)).join(' | ') || 'nothing'}`,
      );
    }
  }
}

/** Ends a client; safe to call twice (mqtt.js never calls back a second end() on an ended client). */
export async function closeClient(client: MqttClient): Promise<void> {
  if (client.disconnected) return;
  await client.endAsync(true);
}

/**
 * The one place that reaches past MQTT.js's documented API (MQTT.js 5).
 * Everything here is something MQTT.js keeps but does not document; an
 * upgrade that moves it must fail test/integration/mqtt-internals.test.ts, not
 * quietly turn the link's in-flight bookkeeping off.
 *
 * - `client.outgoing`: the callback of each QoS 1/2 message sent and not yet
 *   acknowledged, by message id (lib/client.ts publish, _handleAck). It
 *   survives `reconnect()`, which replaces the store holding the messages
 *   themselves: their acknowledgements never come, the callbacks never fire,
 *   and a graceful `end()` waits for `outgoing` to empty, forever.
 */
import type { MqttClient } from 'mqtt';

type Outgoing = Record<number, unknown>;

/** Throws, when the client is made rather than at its first lost connection, if MQTT.js no longer has what this module reads. */
export function expectMqttInternals(client: MqttClient): void {
  outgoingOf(client);
}

/** QoS 1/2 messages the client holds awaiting their acknowledgement. */
export function unacknowledgedCount(client: MqttClient): number {
  return Object.keys(outgoingOf(client)).length;
}

/**
 * Drops the callbacks of every message awaiting its acknowledgement, without
 * calling them: for a connection that is gone, whose messages the caller has
 * taken back to send again. Afterwards `end()` no longer waits for them.
 */
export function forgetInFlight(client: MqttClient): void {
  const outgoing = outgoingOf(client);
  for (const id of Object.keys(outgoing)) delete outgoing[Number(id)];
}

function outgoingOf(client: MqttClient): Outgoing {
  const { outgoing } = client as unknown as { outgoing?: unknown };
  if (typeof outgoing !== 'object' || outgoing === null) {
    throw new Error('MQTT.js client has no `outgoing` record: the link cannot count or forget what is in flight');
  }
  return outgoing as Outgoing;
}

/**
 * Telemetry is stored before the device hears PUBACK.
 *
 * Aedes 1.2 writes a QoS 1 PUBACK before it publishes the message (and so
 * before the `published` hook runs: lib/handlers/publish.js), so ingest from
 * that hook left a window of one group commit (20–200 ms) in which a device
 * had its acknowledgement and deleted the message from its outbox, while
 * the hub held it only in memory: a hub killed then lost it. Publish
 * authorization runs before the PUBACK, so ingest queues the message there
 * and lets Aedes go on (PUBACK, relay to dashboards) only after the commit.
 * The commit is a WAL append, so a killed process keeps it.
 *
 * What it costs: a device's next socket read waits for the commit; the
 * packets of one read are handled together, so with the agent's window of
 * 8 unacknowledged messages a device gets about 8 per commit.
 *
 * QoS 0 (live metric samples) is not acknowledged, so it is not held. An
 * invalid message is dropped from ingest (and logged) but still relayed:
 * MQTT 3.1.1 cannot refuse one PUBLISH without closing the connection, and
 * one bad message is no reason to cut a device off.
 */
import type { AedesOptions } from 'aedes';
import type { Topics } from '../../shared/index.js';
import { isTelemetryChannel, type TelemetryIngest } from './ingest.js';

type AuthorizePublish = NonNullable<AedesOptions['authorizePublish']>;

export function ingestBeforeAck(authorize: AuthorizePublish, topics: Topics, ingest: TelemetryIngest): AuthorizePublish {
  return (client, packet, done) => {
    authorize(client, packet, (err) => {
      if (err) return done(err);
      const parsed = client ? topics.parse(packet.topic) : undefined;
      if (parsed?.kind !== 'device' || !isTelemetryChannel(parsed.channel)) return done(null);
      if (packet.qos === 0) {
        ingest.accept(parsed.deviceId, parsed.channel, packet.payload, () => undefined);
        return done(null);
      }
      ingest.accept(parsed.deviceId, parsed.channel, packet.payload, () => done(null), { durable: true });
    });
  };
}

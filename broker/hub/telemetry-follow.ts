/**
 * Where the hub's follow streams (`logs -f`, `events -f`, the console's live
 * views) hear of committed records: a single hub's own ingest, or on a
 * replica every replica's (broker/telemetry/follow-across-replicas.ts,
 * loaded only then). Started once the broker runs, since replicas talk
 * through it.
 */
import type { Logger } from 'pino';
import type { Closer } from '../../shared/closer.js';
import { type LiveRecords, liveRecordsOf } from '../telemetry/live-records.js';
import type { HubMqtt } from './mqtt.js';
import type { HubTelemetry } from './telemetry.js';

export async function liveTelemetry(
  telemetry: HubTelemetry,
  mqtt: HubMqtt,
  clustered: boolean,
  logger: Logger,
  closer: Closer,
): Promise<LiveRecords> {
  if (!clustered) return liveRecordsOf(telemetry.ingest);
  const { FollowAcrossReplicas } = await import('../telemetry/follow-across-replicas.js');
  const live = new FollowAcrossReplicas({
    bus: mqtt.bus,
    replica: mqtt.broker.aedes.id,
    ingest: telemetry.ingest,
    following: (device) => mqtt.telemetryLink.follow(device),
    logger,
  });
  await live.attach();
  // Closed before the broker (closers run in reverse): the other replicas hear this one follows nothing now.
  closer.add('follow across replicas', () => live.close());
  return live;
}

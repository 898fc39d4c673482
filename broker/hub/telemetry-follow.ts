/**
 * What the hub's live views hear of committed telemetry: a single hub's own
 * ingest, or on a replica every replica's (broker/telemetry/
 * follow-across-replicas.ts, loaded only then). Started once the broker
 * runs, since replicas talk through it.
 *
 * - `records`: log lines and events, for `logs -f`, `events -f` and the
 *   console's live views.
 * - `watchFleet`: held by each fleet stream (the console's fleet page) while
 *   it runs. A single hub's sparklines and newest samples are its own. A
 *   replica's take other replicas' samples only while its fleet page is
 *   watched (relaying every sample to every replica would multiply the
 *   fleet's metrics by the replicas), so when the first watcher comes it
 *   reloads them from the shared database first, once the other replicas
 *   relay: nothing falls between the reload and the relayed samples, and a
 *   sample in both is taken once (by its seq, as the ingest does).
 * - `newestSamples`: `flotilla top` (devices.top) on a replica holds the
 *   same watch for TOP_WATCH_MS after each call, so its answer holds every
 *   replica's devices and a `top` that keeps asking costs one reload.
 */
import type { Logger } from 'pino';
import type { Closer } from '../../shared/closer.js';
import { FLEET_HISTORY_SAMPLES, type MetricsSample } from '../../shared/index.js';
import { seedRows } from '../fleet/history.js';
import type { FollowAcrossReplicas } from '../telemetry/follow-across-replicas.js';
import { type LiveRecords, liveRecordsOf } from '../telemetry/live-records.js';
import type { HubMqtt } from './mqtt.js';
import type { HubTelemetry } from './telemetry.js';

export interface LiveTelemetry {
  records: LiveRecords;
  /** Resolves once the fleet's newest samples and sparklines hold every replica's devices; the function it resolves to ends the watch. */
  watchFleet(): Promise<() => void>;
  /** Resolves once the newest samples hold every replica's devices, and keeps them so for a while. */
  newestSamples(): Promise<void>;
}

const NOT_WATCHING = () => undefined;
/** How long a `top` keeps the fleet watched after its last call. */
export const TOP_WATCH_MS = 60_000;

export async function liveTelemetry(
  telemetry: HubTelemetry,
  mqtt: HubMqtt,
  clustered: boolean,
  logger: Logger,
  closer: Closer,
  knownDevices: () => Promise<number>,
): Promise<LiveTelemetry> {
  if (!clustered) {
    return { records: liveRecordsOf(telemetry.ingest), watchFleet: async () => NOT_WATCHING, newestSamples: async () => undefined };
  }
  const { FollowAcrossReplicas } = await import('../telemetry/follow-across-replicas.js');
  const across = new FollowAcrossReplicas({
    bus: mqtt.bus,
    replica: mqtt.broker.aedes.id,
    ingest: telemetry.ingest,
    following: (device) => mqtt.telemetryLink.follow(device),
    logger,
  });
  await across.attach();
  // Closed before the broker (closers run in reverse): the other replicas hear this one follows nothing now.
  closer.add('follow across replicas', () => across.close());
  const watchFleet = fleetWatch(telemetry, across, knownDevices, logger);
  const glance = watchForAWhile(watchFleet, TOP_WATCH_MS);
  closer.add('fleet watch for top', () => glance.end());
  return { records: across, watchFleet, newestSamples: glance.watch };
}

/** A watch held for `ms` after the last `watch()`. */
function watchForAWhile(watchFleet: LiveTelemetry['watchFleet'], ms: number): { watch: () => Promise<void>; end: () => void } {
  let held: { unwatch: () => void; timer: NodeJS.Timeout } | undefined;
  const end = () => {
    if (!held) return;
    clearTimeout(held.timer);
    held.unwatch();
    held = undefined;
  };
  return {
    async watch() {
      if (!held) {
        const unwatch = await watchFleet();
        // Two calls at once: the first to get here holds the watch.
        if (held) unwatch();
        else held = { unwatch, timer: setTimeout(end, ms).unref() };
      }
      held.timer.refresh();
    },
    end,
  };
}

function fleetWatch(
  telemetry: HubTelemetry,
  across: FollowAcrossReplicas,
  knownDevices: () => Promise<number>,
  logger: Logger,
): LiveTelemetry['watchFleet'] {
  const log = logger.child({ component: 'fleet-feed' });
  const { ingest, history, store } = telemetry;
  let watchers = 0;
  let started: Promise<() => void> | undefined;

  /** Takes a sample another replica committed, unless a newer one of its device is held already. */
  const take = (samples: readonly MetricsSample[]) => {
    for (const sample of samples) {
      const newest = ingest.latest.get(sample.device);
      if (newest && newest.seq >= sample.seq) continue;
      ingest.latest.set(sample.device, sample);
      history.record(sample.device, sample.host);
    }
  };

  const start = async (): Promise<() => void> => {
    let held: MetricsSample[] | undefined = [];
    const stop = await across.followMetrics((samples) => (held ? held.push(...samples) : take(samples)));
    try {
      const [recent, newest] = await Promise.all([
        store.recentHostMetrics(FLEET_HISTORY_SAMPLES, seedRows(await knownDevices())),
        store.latestMetrics(),
      ]);
      history.reseed(recent);
      ingest.seedLatest(newest);
    } catch (err) {
      log.warn({ err }, 'reloading the fleet samples failed; the sparklines of other replicas devices fill as samples arrive');
    } finally {
      take(held);
      held = undefined;
    }
    return stop;
  };

  return async () => {
    watchers++;
    started ??= start();
    const stop = await started;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      if (--watchers > 0) return;
      started = undefined;
      stop();
    };
  };
}

/**
 * Where follow streams (follow.ts) hear of committed log lines and events: a
 * single hub's own ingest, or on a hub replica every replica's
 * (follow-across-replicas.ts). A listener may be handed records of other
 * devices than the one it follows; the stream filters.
 */
import type { EventRecord, LogRecord } from '../../shared/index.js';
import type { TelemetryIngest } from './ingest.js';

export interface LiveRecords {
  /**
   * Resolves once every record committed from then on, on any replica, reaches
   * `listener` (so a backlog read after it misses nothing); the function it
   * resolves to stops the listener.
   */
  followLogs(device: string, listener: (records: LogRecord[]) => void): Promise<() => void>;
  /** The same for events, of one device or (undefined) of all. */
  followEvents(device: string | undefined, listener: (records: EventRecord[]) => void): Promise<() => void>;
  /**
   * True when several replicas commit: ids then follow commit order per device
   * (a device is connected to one replica at a time), not across devices.
   */
  readonly acrossReplicas: boolean;
}

/** A single hub's: its ingest hears every commit, and ids follow commit order. */
export function liveRecordsOf(ingest: Pick<TelemetryIngest, 'onLogs' | 'onEvents'>): LiveRecords {
  return {
    acrossReplicas: false,
    followLogs: async (_device, listener) => ingest.onLogs(listener),
    followEvents: async (_device, listener) => ingest.onEvents(listener),
  };
}

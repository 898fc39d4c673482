/**
 * When each device was last heard from, and offline the moment its
 * connection ends.
 *
 * - Every packet a connection sends counts (a PINGREQ each keepalive too),
 *   so an idle but healthy device's `lastSeen` stays within one keepalive.
 *   Touches are kept in memory and written in one transaction per
 *   `flushIntervalMs`: a fleet pinging every 30 s is not one write per ping.
 * - A device is marked offline by its will, which Aedes publishes when the
 *   connection drops without DISCONNECT or misses 1.5 keepalives
 *   [MQTT-3.1.2-8, MQTT-3.1.2-24]. A client that says DISCONNECT without
 *   first reporting itself offline sends no will [MQTT-3.1.2-10], so a
 *   closed connection marks its device offline here too, and
 *   `onDisconnected` publishes the retained offline status the will would
 *   have, so dashboards on the status topic agree. A session taken
 *   over by a new connection is unregistered before the new one registers,
 *   and the agent reports itself online on every connect, so the order of
 *   the two writes is right.
 * - On a clustered broker, a connection closed because its device connected
 *   to another replica (`movedAway`) changes nothing here: the device is
 *   online there, and that replica's writes say so, in whatever order Redis
 *   delivers them (broker/mqtt/cluster-wills.ts).
 * - Client ids that are not devices (the dispatcher, API clients) match no
 *   device row: their writes change nothing.
 */
import type { Aedes, Client } from 'aedes';
import type { Logger } from 'pino';
import type { DeviceStore } from '../store/devices.js';
import { isDatabaseUnavailable } from '../store/pg/errors.js';

export interface PresenceOptions {
  devices: Pick<DeviceStore, 'recordLastSeen' | 'recordDisconnected'>;
  logger: Logger;
  now?: () => Date;
  /** How often touches are written (default 10 s). */
  flushIntervalMs?: number;
  /** A device that was online lost its connection without saying so. */
  onDisconnected?: (deviceId: string) => void;
  /** True for a connection closed because its client id connected to another replica. */
  movedAway?: (client: Client) => boolean;
}

export class DevicePresence {
  private pending = new Map<string, string>();
  private stopping = false;
  private leftToWills = 0;
  private readonly timer: NodeJS.Timeout;
  private readonly now: () => Date;
  private readonly log: Logger;

  constructor(private readonly options: PresenceOptions) {
    this.now = options.now ?? (() => new Date());
    this.log = options.logger.child({ component: 'presence' });
    this.timer = setInterval(() => void this.flush(), options.flushIntervalMs ?? 10_000);
    this.timer.unref();
  }

  attach(aedes: Aedes): void {
    aedes.on('ping', (_packet, client) => this.touch(client));
    aedes.on('publish', (_packet, client) => this.touch(client));
    aedes.on('clientDisconnect', (client) => {
      // No touch: a connection closed for a missed keepalive was last heard from long before.
      void this.flush();
      if (this.options.movedAway?.(client)) return;
      const stopping = this.stopping;
      this.options.devices.recordDisconnected(client.id).then(
        (wasOnline) => {
          if (!wasOnline) return;
          if (stopping) return this.leftToWill(client.id);
          this.log.info({ deviceId: client.id }, 'device connection closed');
          this.options.onDisconnected?.(client.id);
        },
        (err: unknown) => this.failed(err, { deviceId: client.id }, 'recording a closed connection failed'),
      );
    });
  }

  /** Writes the pending touches. */
  async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const touches = this.pending;
    this.pending = new Map();
    try {
      await this.options.devices.recordLastSeen(touches);
    } catch (err) {
      // Kept for the next flush, unless a newer touch came meanwhile: the database being away loses no lastSeen.
      for (const [deviceId, at] of touches) if (!this.pending.has(deviceId)) this.pending.set(deviceId, at);
      this.failed(err, { devices: touches.size }, 'recording when devices were last seen failed');
    }
  }

  /** The database being away is logged once by the database (broker/store/pg/database.ts); anything else here. */
  private failed(err: unknown, fields: Record<string, unknown>, msg: string): void {
    const level = isDatabaseUnavailable(err) ? 'debug' : 'warn';
    this.log[level]({ ...fields, err: (err as Error).message }, msg);
  }

  /**
   * Called before the broker closes its connections: from then on a closed connection is still
   * recorded, but not announced, since the broker publishes each client's will as it closes it,
   * and its emitter is closed by the time the record is written (on replicas every announcement
   * failed, one warning per device).
   */
  stop(): Promise<void> {
    clearInterval(this.timer);
    this.stopping = true;
    return this.flush();
  }

  /** One line for all the devices a stopping hub leaves, not one each. */
  private leftToWill(deviceId: string): void {
    if (this.leftToWills++ > 0) return;
    this.log.info({ deviceId }, 'the hub is stopping: the offline status of devices whose connections it closes is left to their wills');
  }

  private touch(client: Client | null): void {
    if (client?.id) this.pending.set(client.id, this.now().toISOString());
  }
}

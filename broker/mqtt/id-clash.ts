/**
 * Two devices with one id (a copied SD card image does exactly this).
 *
 * The broker closes a connection when another one with the same client id
 * arrives [MQTT-3.1.4-2], so two agents with one id take the connection from
 * each other at every reconnect, for ever, and each sees only a lost link.
 * One takeover is normal (a device back on a new connection before the old,
 * half-open one timed out); `threshold` of them within `windowMs` is a clash.
 * The hub then says so once (onClash: a log line and a device event) and
 * reports it on the device (`get devices`, `describe device`) until
 * `quietMs` pass without a takeover.
 *
 * A takeover is counted only once the new connection is in (authenticated and
 * registered): a stranger who merely sends the id and is refused takes nothing.
 */
import type { Aedes, Client, ConnectPacket } from 'aedes';
import type { IdClash } from '../../shared/index.js';
import { remoteAddress } from './client-address.js';

export interface IdClashOptions {
  /** Only device ids are watched: a service reconnecting under its name is its own business. */
  isDevice: (clientId: string) => Promise<boolean>;
  onClash: (clash: IdClash) => void;
  now?: () => number;
  threshold?: number;
  windowMs?: number;
  quietMs?: number;
}

const MAX_ADDRESSES = 8;

interface Ledger {
  takeovers: number[];
  addresses: string[];
  since?: number;
}

/** The pure bookkeeping: takeovers per id in a sliding window. */
export class TakeoverLedger {
  private readonly ledgers = new Map<string, Ledger>();
  private readonly threshold: number;
  private readonly windowMs: number;
  private readonly quietMs: number;

  constructor(options: Pick<IdClashOptions, 'threshold' | 'windowMs' | 'quietMs'> = {}) {
    this.threshold = options.threshold ?? 3;
    this.windowMs = options.windowMs ?? 10 * 60_000;
    this.quietMs = options.quietMs ?? 30 * 60_000;
  }

  /** Records a takeover of `id` by a connection from `address`; the clash if this one made it (once per clash). */
  record(id: string, address: string, at: number): IdClash | undefined {
    const ledger = this.ledgers.get(id) ?? { takeovers: [], addresses: [] };
    this.ledgers.set(id, ledger);
    if (ledger.since !== undefined && at - (ledger.takeovers.at(-1) ?? at) >= this.quietMs) ledger.since = undefined;
    ledger.takeovers = [...ledger.takeovers.filter((t) => at - t < this.windowMs), at];
    ledger.addresses = [...ledger.addresses.filter((a) => a !== address), address].slice(-MAX_ADDRESSES);
    if (ledger.since !== undefined || ledger.takeovers.length < this.threshold) return undefined;
    ledger.since = at;
    return this.view(id, ledger, at);
  }

  /** The clash on `id`, while it lasts. */
  get(id: string, at: number): IdClash | undefined {
    const ledger = this.ledgers.get(id);
    if (ledger?.since === undefined) return undefined;
    if (at - (ledger.takeovers.at(-1) ?? 0) >= this.quietMs) {
      this.ledgers.delete(id);
      return undefined;
    }
    return this.view(id, ledger, at);
  }

  private view(id: string, ledger: Ledger, at: number): IdClash {
    return {
      deviceId: id,
      since: new Date(ledger.since ?? at).toISOString(),
      takeovers: ledger.takeovers.filter((t) => at - t < this.windowMs).length,
      addresses: [...ledger.addresses],
    };
  }
}

/** Watches the broker's connections for takeovers of device ids. */
export class ClientIdClashes {
  private readonly ledger: TakeoverLedger;
  private readonly now: () => number;
  /** The registered connection of each client id. */
  private readonly connected = new Map<string, Client>();
  /** Connections that, when they started, found their id held by another. */
  private readonly contested = new WeakMap<Client, Client>();

  constructor(private readonly options: IdClashOptions) {
    this.ledger = new TakeoverLedger(options);
    this.now = options.now ?? Date.now;
  }

  /** A preConnect hook (first in the chain: it refuses nothing). */
  readonly preConnect = (client: Client, packet: ConnectPacket, done: (err: Error | null, ok: boolean) => void): void => {
    const holder = packet.clientId ? this.connected.get(packet.clientId) : undefined;
    if (!holder) {
      done(null, true);
      return;
    }
    this.options.isDevice(packet.clientId).then(
      (isDevice) => {
        if (isDevice) this.contested.set(client, holder);
        done(null, true);
      },
      // Not knowing whether it is a device only loses the clash count for this connection.
      () => done(null, true),
    );
  };

  /**
   * `movedAway` (a clustered broker's): true for a connection closed because its
   * client id connected to another replica. That replica saw no holder of the
   * id, so the takeover is counted here, where the id was taken from; with two
   * devices on two replicas each replica counts about half of the takeovers.
   */
  attach(aedes: Aedes, movedAway?: (client: Client) => boolean): void {
    aedes.on('client', (client) => {
      const holder = this.contested.get(client);
      this.connected.set(client.id, client);
      if (holder && holder !== client) this.tookOver(client);
    });
    aedes.on('clientDisconnect', (client) => {
      if (this.connected.get(client.id) === client) this.connected.delete(client.id);
      if (!movedAway?.(client)) return;
      this.options.isDevice(client.id).then(
        (isDevice) => isDevice && this.tookOver(client),
        () => undefined,
      );
    });
  }

  get(deviceId: string): IdClash | undefined {
    return this.ledger.get(deviceId, this.now());
  }

  private tookOver(client: Client): void {
    const clash = this.ledger.record(client.id, remoteAddress(client) ?? 'unknown', this.now());
    if (clash) this.options.onClash(clash);
  }
}

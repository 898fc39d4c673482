/**
 * Ends the sessions a dead replica left `open` in the audit trail. A replica
 * names itself in the sessions it opens; a replica that is killed ends none of
 * them, and no other replica relays them. Every replica sweeps now and then:
 * the open sessions' replicas that are no longer present (hub-presence.ts) for
 * `goneAfterMs` are gone, and their sessions end as `hub_lost`. Their devices are
 * told to end them too (`session.close`, as the opener's replica would have): the
 * process a session ran (a shell, an exec) is stopped rather than left to the
 * agent's idle timeout.
 *
 * Invariants:
 *   - a replica never ends its own sessions here: it is running, so it is present;
 *   - a replica must be missing from every sweep for `goneAfterMs` before its
 *     sessions end, so a presence session being opened again (PostgreSQL
 *     restarted) ends nothing that still runs;
 *   - ending is conditional on `open` (closeOrphansOf), so two replicas that
 *     sweep at once end each session once;
 *   - the devices are told by every replica that heard the sessions' opens and
 *     finds their replica gone, whoever ended the audit rows: a replica that
 *     hears another's close forgets the session (sessions-elsewhere.ts), so it
 *     is told once or, when two sweep at the same moment, twice, which a device
 *     takes as one (a close of a session it no longer runs is ignored).
 */
import type { Logger } from 'pino';
import type { AuditStore } from './audit-store.js';

/** The sessions devices run for other replicas, as this replica heard them opened. */
export interface DeviceSessionsElsewhere {
  /** The replicas those sessions belong to. */
  replicas(): Iterable<string>;
  /** Tells the devices to end `replica`'s sessions, and forgets them; how many. */
  end(replica: string, reason: string): number;
}

export interface ReplicaOrphansOptions {
  audit: AuditStore;
  /** This replica's name, as it writes it into its sessions. */
  self: string;
  /** The replicas present now. */
  present: () => Promise<ReadonlySet<string>>;
  /** The devices' side of other replicas' sessions; without it only the audit trail is ended. */
  devices?: DeviceSessionsElsewhere;
  logger: Logger;
  intervalMs?: number;
  goneAfterMs?: number;
  now?: () => number;
}

export class ReplicaOrphans {
  /** Since when each replica with open sessions has been missing. */
  private readonly missingSince = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private readonly log: Logger;
  private readonly goneAfterMs: number;
  private readonly now: () => number;

  constructor(private readonly options: ReplicaOrphansOptions) {
    this.log = options.logger.child({ component: 'remote-access' });
    this.goneAfterMs = options.goneAfterMs ?? 15_000;
    this.now = options.now ?? (() => performance.now());
  }

  start(): void {
    this.timer = setInterval(() => {
      this.running ??= this.sweep()
        // The database away: the next sweep tries again, and a missing replica's time keeps counting.
        .catch((err: unknown) => this.log.debug({ err }, 'sweep for sessions of replicas that are gone failed'))
        .finally(() => {
          this.running = undefined;
        });
    }, this.options.intervalMs ?? 5_000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One sweep: the sessions it ended. */
  async sweep(): Promise<number> {
    const withSessions = new Set([...(await this.options.audit.openReplicas()), ...(this.options.devices?.replicas() ?? [])]);
    withSessions.delete(this.options.self);
    const open = [...withSessions];
    for (const replica of this.missingSince.keys()) if (!open.includes(replica)) this.missingSince.delete(replica);
    if (open.length === 0) return 0;
    const present = await this.options.present();
    const at = this.now();
    let ended = 0;
    for (const replica of open) {
      if (present.has(replica)) {
        this.missingSince.delete(replica);
        continue;
      }
      const since = this.missingSince.get(replica) ?? at;
      this.missingSince.set(replica, since);
      if (at - since < this.goneAfterMs) continue;
      const reason = `replica ${replica} stopped while the session ran`;
      const sessions = await this.options.audit.closeOrphansOf(replica, reason);
      const devicesTold = this.options.devices?.end(replica, reason) ?? 0;
      this.missingSince.delete(replica);
      ended += sessions;
      if (sessions > 0 || devicesTold > 0) {
        this.log.warn({ replica, sessions, devicesTold }, 'sessions left open by a replica that is gone were ended');
      }
    }
    return ended;
  }
}

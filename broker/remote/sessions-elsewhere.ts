/**
 * Sessions another replica opened for devices that may be connected here: a device publishes a
 * session's frames through the replica it is connected to, whose access control lets it publish
 * only on the up topic of an open session (broker/auth/acl.ts), and the session lives in the
 * registry of the replica its opener reached. Every replica hears every `session.open` and
 * `session.close` command on the cluster's shared emitter, so each keeps the ids of sessions
 * opened elsewhere and lets their devices' frames through; the opener's replica relays them.
 *
 * A session whose close this replica never hears (the device ended it) is forgotten after
 * MAX_AGE_MS, and at most MAX_SESSIONS are kept, oldest dropped first: a device can then publish
 * on a dead session's topic for a while, which relays nothing (no registry holds it).
 *
 * Each session is kept with the replica that opened it (the broker its open came through), so
 * when that replica dies the one that notices (replica-orphans.ts) can tell the devices to end
 * its sessions: nothing relays them any more, and the process behind one would otherwise run
 * until the agent's idle timeout.
 */
import { Command, decode, type Topics } from '../../shared/index.js';
import { SESSION_COMMANDS } from '../../shared/remote/requests.js';
import type { HubBus } from '../mqtt/hub-bus.js';

const MAX_AGE_MS = 24 * 3600_000;
const MAX_SESSIONS = 10_000;

/** A session another replica opened: the device runs it, that replica relays it. */
export interface SessionElsewhere {
  deviceId: string;
  sessionId: string;
}

interface Heard {
  atMs: number;
  deviceId: string;
  sessionId: string;
  /** The opener's replica; undefined when the bus does not say (a single broker never hears opens from elsewhere). */
  replica: string | undefined;
}

export class SessionsElsewhere {
  /** `device\0session` → when and from which replica its open was heard, oldest first. */
  private readonly open = new Map<string, Heard>();

  constructor(private readonly nowMs: () => number = Date.now) {}

  async attach(bus: HubBus, topics: Topics): Promise<void> {
    await bus.subscribe([topics.allDevices('commands')], (topic, payload, origin) => {
      // This replica's own opens are in its registry.
      if (origin.publishedHere) return;
      const parsed = topics.parse(topic);
      if (parsed?.kind !== 'device') return;
      const command = decode(Command, payload);
      if (!command.ok) return;
      const sessionId = command.value.args?.sessionId;
      if (typeof sessionId !== 'string') return;
      const key = `${parsed.deviceId}\0${sessionId}`;
      if (command.value.type === SESSION_COMMANDS.open)
        this.remember(key, { deviceId: parsed.deviceId, sessionId, replica: origin.publishedBy });
      else if (command.value.type === SESSION_COMMANDS.close) this.open.delete(key);
    });
  }

  isOpen(deviceId: string, sessionId: string): boolean {
    const key = `${deviceId}\0${sessionId}`;
    const heard = this.open.get(key);
    if (heard === undefined) return false;
    if (this.nowMs() - heard.atMs <= MAX_AGE_MS) return true;
    this.open.delete(key);
    return false;
  }

  /** The replicas that opened the sessions kept here. */
  replicas(): Set<string> {
    const replicas = new Set<string>();
    for (const heard of this.open.values()) if (heard.replica !== undefined) replicas.add(heard.replica);
    return replicas;
  }

  /** Forgets the sessions `replica` opened, and returns them (it is gone: their devices are to be told). */
  takeOf(replica: string): SessionElsewhere[] {
    const taken: SessionElsewhere[] = [];
    for (const [key, heard] of this.open) {
      if (heard.replica !== replica) continue;
      this.open.delete(key);
      taken.push({ deviceId: heard.deviceId, sessionId: heard.sessionId });
    }
    return taken;
  }

  private remember(key: string, session: Omit<Heard, 'atMs'>): void {
    this.open.delete(key);
    this.open.set(key, { atMs: this.nowMs(), ...session });
    if (this.open.size > MAX_SESSIONS) this.open.delete(this.open.keys().next().value!);
  }
}

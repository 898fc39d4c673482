/**
 * The times the container engine was away, as the agent saw them, and what
 * they mean for a version on trial.
 *
 * When dockerd stops (a package upgrade, a crash, `systemctl restart
 * docker`) it stops every container with its stop signal; when it starts
 * again it starts those with a restart policy. Neither is the version's
 * doing. So the health gate treats an exit that falls in an outage as the
 * engine's, not as a failure, and does not count the time the engine was
 * away against the health timeout: the trial pauses while the engine is
 * away and resumes, with the time it had left, once it is back.
 *
 * The agent sees an outage only from its own looks, so the bounds are the
 * looks around it: `from` is the last look that found the engine up (an exit
 * after it may be the engine's), `to` the first look that found it back.
 * A container that really crashed in the instant before its engine was
 * stopped is given the benefit of the doubt: it is judged again once it runs.
 *
 * Outages live in the agent's memory only: an agent that starts after one
 * (a device reboot) judges a container its restart policy brought back from
 * its new start, and one the engine left stopped as exited.
 *
 * Times are the agent's clock; the engine's timestamps (StartedAt,
 * FinishedAt) are compared with them, which holds for an engine on the same
 * host, the only setup the agent supports for its health gate.
 */

export interface EngineOutage {
  /** When the last look that found the engine up began (ms since the epoch). */
  from: number;
  /** When the first look that found it back began; absent while it is still away. */
  to?: number;
}

/** How many past outages are kept: more than any trial spans. */
const KEPT = 8;

/** The outage an instant falls in: after its last good look, not after the engine was back. */
export function outageAt(outages: readonly EngineOutage[], at: number): EngineOutage | undefined {
  return outages.find((o) => o.from < at && (o.to === undefined || at <= o.to));
}

/** How much of [start, end] the engine was away, in ms. */
export function awayDuring(outages: readonly EngineOutage[], start: number, end: number): number {
  let away = 0;
  for (const o of outages) {
    const overlap = Math.min(end, o.to ?? end) - Math.max(start, o.from);
    if (overlap > 0) away += overlap;
  }
  return away;
}

/** The reconciler's record of outages: told of every look's outcome. */
export class EngineOutages {
  private readonly outages: EngineOutage[] = [];
  private lastUpAt: number | undefined;

  get list(): readonly EngineOutage[] {
    return this.outages;
  }

  /** The last look found the engine away (or going): no look since has confirmed it back. */
  get away(): boolean {
    const last = this.outages.at(-1);
    return last !== undefined && last.to === undefined;
  }

  /** The engine answered a look that began at `at` (and, if it was asked, confirmed it is not going away). */
  seenUp(at: number): void {
    const open = this.outages.at(-1);
    if (open && open.to === undefined) open.to = at;
    this.lastUpAt = at;
  }

  /** A look found the engine unreachable, or going away. */
  wentAway(now: number): void {
    const open = this.outages.at(-1);
    if (open && open.to === undefined) return;
    this.outages.push({ from: this.lastUpAt ?? now });
    if (this.outages.length > KEPT) this.outages.shift();
  }
}

/**
 * What a replica still has to send when it closes. Aedes' close() closes
 * every client, which starts each client's will on its way (authorizePublish,
 * then broker.publish), and closes the emitter as soon as every client's
 * close has *returned*, not once their wills are published: on Redis a
 * retained will is first written to the persistence (a round trip), so by the
 * time it reaches the emitter the emitter is closed ("mqemitter-redis is
 * closed"). Aedes then deletes the will all the same, so no live replica's
 * sweep publishes it either, and every device of a replica stopped gracefully
 * stayed shown online on the others. Here the emitter's close waits for the
 * publishes in flight (the wills among them) to be handed to Redis; the
 * broker's close is bounded by cluster.ts (`CLOSE_GRACE_MS`) all the same.
 */
import type { Aedes } from 'aedes';

type Publish = Aedes['publish'];

/** Counts the broker's publishes that have not completed yet. */
export class PublishesInFlight {
  private count = 0;
  private waiting: (() => void)[] = [];

  /** Wraps the broker's publish (clients' messages, wills, the hub's own): call once the broker exists. */
  track(aedes: Aedes): void {
    const publish = aedes.publish.bind(aedes) as (
      packet: Parameters<Publish>[0],
      client: Parameters<Publish>[1] | null,
      done?: (err?: Error) => void,
    ) => void;
    aedes.publish = ((packet: Parameters<Publish>[0], client: unknown, done?: unknown) => {
      // Aedes' own signature: the client may be left out, the callback in its place.
      const [from, callback] = typeof client === 'function' ? [null, client] : [client, done];
      this.count++;
      let settled = false;
      publish(packet, from as Parameters<Publish>[1] | null, (err?: Error) => {
        if (!settled) {
          settled = true;
          this.count--;
        }
        try {
          if (typeof callback === 'function') (callback as (err?: Error) => void)(err);
        } finally {
          if (this.count === 0) this.release();
        }
      });
    }) as Publish;
  }

  /** Resolves once no publish is in flight. */
  settled(): Promise<void> {
    if (this.count === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    for (let resolve = this.waiting.shift(); resolve; resolve = this.waiting.shift()) resolve();
  }
}

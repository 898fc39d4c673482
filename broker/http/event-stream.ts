/**
 * A Server-Sent Events response that follows something live: the logs and
 * events follow routes (broker/telemetry/follow.ts) and the fleet stream
 * (broker/fleet/follow.ts).
 *
 * Invariants:
 * - `subscribe` registers the listener and returns what the client gets first
 *   (a backlog, a snapshot) in one synchronous step, so nothing can fall
 *   between the first events and the live ones;
 * - what the client asked for at once (the first events) is written whole;
 *   what piles up after it is bounded: beyond MAX_UNSENT_BYTES more unsent
 *   bytes than the first events left, the follower is too slow and the stream
 *   ends with `slowNote` (the client reconnects), so a follower that stops
 *   reading cannot grow the hub's memory;
 * - the listener is removed exactly once, whichever of the client, the hub or
 *   the bound ends the stream.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

const KEEPALIVE_MS = 15_000;
const MAX_UNSENT_BYTES = 4 * 1024 * 1024;

/** `?follow=true` (or `1`, or bare `?follow`): the route streams instead of answering once. */
export const isFollow = (url: URL) => ['true', '1', ''].includes(url.searchParams.get('follow') ?? 'no');

export interface StreamEvent {
  event: string;
  data: unknown;
}

export type SendEvents = (events: readonly StreamEvent[]) => void;

export interface Subscription {
  first: readonly StreamEvent[];
  stop: () => void;
}

export function openEventStream(
  req: IncomingMessage,
  res: ServerResponse,
  subscribe: (send: SendEvents) => Subscription,
  slowNote: string,
): void {
  let ended = false;
  let maxUnsent = Number.POSITIVE_INFINITY;
  let subscription: Subscription | undefined;
  const stop = () => {
    if (ended) return;
    ended = true;
    clearInterval(keepalive);
    subscription?.stop();
  };
  const send: SendEvents = (events) => {
    if (ended || events.length === 0) return;
    res.write(events.map(({ event, data }) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`).join(''));
    if (res.writableLength > maxUnsent) {
      res.end(`: ${slowNote}\n\n`);
      stop();
    }
  };
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    // A reverse proxy in front of the hub (nginx) would otherwise hold events back to fill its buffer.
    'x-accel-buffering': 'no',
  });
  // Tells the client the stream is open even when there is nothing to send yet.
  res.write(': following\n\n');
  const keepalive = setInterval(() => res.write(': ping\n\n'), KEEPALIVE_MS);
  try {
    subscription = subscribe(send);
  } catch (err) {
    // The server destroys the response (its status line is sent): nothing may keep pinging it.
    stop();
    throw err;
  }
  send(subscription.first);
  maxUnsent = res.writableLength + MAX_UNSENT_BYTES;
  req.on('close', stop);
  res.on('close', stop);
}

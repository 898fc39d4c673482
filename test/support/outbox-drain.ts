import type { Outbox } from '../../agent/outbox/outbox.js';

/** Takes and acknowledges everything, returning the payloads in the order they were offered. */
export function drain(outbox: Outbox): string[] {
  const sent: string[] = [];
  for (let m = outbox.next(); m; m = outbox.next()) {
    outbox.take(m);
    outbox.ack(m);
    sent.push(m.payload.toString());
  }
  return sent;
}

/**
 * The one place that reaches past Aedes' public API (Aedes 1.2). Everything
 * here is something Aedes keeps but does not document; an upgrade that moves
 * it must fail test/integration/aedes-internals.test.ts, not quietly turn a
 * guard off.
 *
 * - `aedes.clients`: the connected clients by id (lib/aedes.js registerClient).
 * - a client's `deliver0` / `deliverQoS`: how a message reaches one
 *   subscription's connection, looked up when the subscription is added
 *   (lib/client.js, lib/handlers/subscribe.js).
 * - `aedes.persistence`'s outgoing queue methods: what a persistent session
 *   keeps for an offline client (aedes-persistence).
 * - a client's `connackSent`: set once its CONNACK is written (lib/handlers/connect.js).
 */
import type { Aedes, Client } from 'aedes';

/** Delivers one message to one client. */
export type Deliver = (packet: { brokerId?: string | null }, cb: () => void) => void;

export interface ClientDelivery {
  deliver0: Deliver;
  deliverQoS: Deliver;
}

export interface OutgoingQueue {
  outgoingEnqueue(sub: { clientId: string }, packet: unknown): Promise<void>;
  outgoingEnqueueCombi(subs: { clientId: string }[], packet: unknown): Promise<void>;
  outgoingClearMessageId(client: { id: string }, packet: unknown): Promise<unknown>;
}

/** The connected client with this id, if any. */
export function connectedClient(aedes: Aedes, clientId: string): Client | undefined {
  return clientsOf(aedes)[clientId];
}

/** Closes the connections whose client ids match (a revoked device, a deleted account); how many. */
export function closeClients(aedes: Aedes, match: (clientId: string) => boolean): number {
  const matching = Object.entries(clientsOf(aedes)).filter(([id, client]) => client !== undefined && match(id));
  for (const [, client] of matching) client?.close();
  return matching.length;
}

/**
 * Ends every client's connection at once, for a broker whose close cannot
 * finish (a clustered one whose Redis is gone: Aedes unsubscribes a closing
 * client through Redis before it lets the socket go).
 */
export function destroyConnections(aedes: Aedes): void {
  for (const client of Object.values(clientsOf(aedes))) client?.conn.destroy();
}

/** A client's delivery functions, or undefined if Aedes no longer has them where this expects. */
export function clientDelivery(client: Client): ClientDelivery | undefined {
  const { deliver0, deliverQoS } = client as unknown as Partial<ClientDelivery>;
  if (typeof deliver0 !== 'function' || typeof deliverQoS !== 'function') return undefined;
  return { deliver0, deliverQoS };
}

/** True once the client's CONNACK is written. */
export function connackSent(client: Client): boolean {
  return (client as unknown as { connackSent?: boolean }).connackSent === true;
}

/** Replaces a client's delivery functions: every subscription it adds afterwards delivers through these. */
export function replaceClientDelivery(client: Client, delivery: ClientDelivery): void {
  Object.assign(client as unknown as ClientDelivery, delivery);
}

/** The persistence's outgoing queue, to wrap (call once, after the broker is created). */
export function outgoingQueue(aedes: Aedes): OutgoingQueue {
  const persistence = (aedes as unknown as { persistence: OutgoingQueue }).persistence;
  for (const method of ['outgoingEnqueue', 'outgoingEnqueueCombi', 'outgoingClearMessageId'] as const) {
    if (typeof persistence?.[method] !== 'function')
      throw new Error(`Aedes persistence has no ${method}: the session queue bound cannot apply`);
  }
  return persistence;
}

function clientsOf(aedes: Aedes): Record<string, Client | undefined> {
  return (aedes as unknown as { clients: Record<string, Client | undefined> }).clients;
}

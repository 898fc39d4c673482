/**
 * Both ends of a session WebSocket ping their peer and give up on one that
 * missed MISSED_PONGS_LIMIT pings in a row (docs/remote-protocol.md §5): the
 * hub to end a session whose client vanished, the CLI to report a lost hub.
 */
import type { WebSocket } from 'ws';

export const MISSED_PONGS_LIMIT = 2;

/** Pings `ws` every `intervalMs`; calls `onLost` once the peer missed the limit. Returns how to stop. */
export function keepPeerAlive(ws: WebSocket, intervalMs: number, onLost: () => void): () => void {
  let unanswered = 0;
  ws.on('pong', () => {
    unanswered = 0;
  });
  const timer = setInterval(() => {
    if (ws.readyState !== ws.OPEN) return;
    if (unanswered >= MISSED_PONGS_LIMIT) {
      clearInterval(timer);
      onLost();
      return;
    }
    unanswered++;
    ws.ping();
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * What a refused connection means to the agent, so that it says the right
 * thing and retries on the right schedule:
 *
 * - `protocol`: the hub speaks another version of Flotilla's protocol
 *   (CONNACK 1, shared/protocol-version.ts); only an upgrade helps.
 * - `credentials`: the hub does not accept this device (identifier rejected,
 *   bad user name or password, not authorized: MQTT 3.1.1 return codes 2, 4,
 *   5 [MQTT-3.2.2-3]; MQTT 5 0x85, 0x86, 0x87, 0x8A banned); someone must act,
 *   usually `flotilla agent register` again.
 * - `unavailable`: the hub is there but cannot take the device now (return
 *   code 3, MQTT 5 0x88 "server unavailable", 0x89 "server busy"): its
 *   database is out of reach, or too many devices are logging in at once.
 *   Nothing is wrong with the device; retrying is all it needs.
 * - `unreachable`: anything else (no answer, a reset, a timeout, TLS).
 */
import { CONNACK_UNACCEPTABLE_PROTOCOL } from '../shared/protocol-version.js';

export type ConnectRefusal = 'protocol' | 'credentials' | 'unavailable' | 'unreachable';

const CREDENTIALS_REFUSED = new Set<unknown>([2, 4, 5, 0x85, 0x86, 0x87, 0x8a]);
const SERVER_UNAVAILABLE = new Set<unknown>([3, 0x88, 0x89]);

/** `code`: the `code` of the error MQTT.js emits (a CONNACK's return or reason code, else a socket error's code). */
export function connectRefusal(code: unknown): ConnectRefusal {
  if (code === CONNACK_UNACCEPTABLE_PROTOCOL) return 'protocol';
  if (CREDENTIALS_REFUSED.has(code)) return 'credentials';
  if (SERVER_UNAVAILABLE.has(code)) return 'unavailable';
  return 'unreachable';
}

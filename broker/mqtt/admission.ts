/**
 * Connection admission: how many new MQTT connections the broker starts per
 * second, as Aedes' `preConnect` hook. After a hub restart every device comes
 * back at once; admitting them all in the same second would have Aedes
 * restore thousands of sessions and deliver thousands of retained desired
 * documents together, starving everything else (the dispatcher, the HTTP API,
 * devices already connected) for as long as the storm lasts.
 *
 * A token bucket: `rate` tokens a second, at most `burst` saved up. A CONNECT
 * that finds a token goes on to authentication at once. One that finds none
 * may *reserve* the next free token if that token comes within `maxWaitMs`
 * (its CONNECT is held until then; no more than rate·maxWaitMs connections
 * wait at once, since each holds a reservation); otherwise it is refused
 * straight away, before Aedes has done anything for it (no session lookup,
 * no authentication).
 *
 * Before the global bucket, each remote address has its own
 * (`ratePerAddress`, address-rate.ts): over it, a CONNECT is refused at once.
 *
 * A refused client gets CONNACK return code 3, "server unavailable"
 * (MQTT 3.1.1 §3.2.2.3), written by connack-refusal.ts, and its connection is
 * closed [MQTT-3.2.2-5]. Devices then retry on their own schedule (the agent:
 * exponential backoff with full jitter, agent/reconnect-backoff.ts).
 *
 * Why hold up to 1 s (ADMISSION_MAX_WAIT_MS) and then refuse, rather than
 * only refuse or only hold — measured with bench/connect-storm.ts
 * (BENCHMARKS.md, "Reconnect storm"), agent-like clients on a 2-core machine:
 * - In a real storm (2000 devices at once, 200/s; 1000 within 1 s, 50/s)
 *   refusing at once and holding ≤ 1 s cannot be told apart: p90 of 11–13 s
 *   and 17–20 s either way, about N/rate, and about as many refusals. Any
 *   limit cuts the broker's worst stall from ~5 s (no limit) to ~1 s.
 * - Just above the bucket (300 at once, 200/s) refusing turns away 62–75
 *   devices, which then sit out up to 2 s of backoff; a 1 s hold turns away none.
 * - Holding longer (5 s) gains nothing and brings held connections close to
 *   the agent's 10 s connect timeout when the broker is busy (380 timeouts in
 *   one run): work done for a client that has already given up.
 * A hold costs an open socket and a timer each, at most rate × 1 s of them.
 */
import type { AedesOptions, Client } from 'aedes';
import type { Logger } from 'pino';
import { AddressRate, addressKey } from './address-rate.js';
import { remoteAddress } from './client-address.js';
import { refuseConnect } from './connack-refusal.js';
import { TokenBucket } from './token-bucket.js';

type PreConnectHandler = NonNullable<AedesOptions['preConnect']>;

/** MQTT 3.1.1 CONNACK return code 3: "the Network Connection has been made but the MQTT service is unavailable". */
const SERVER_UNAVAILABLE = 3;

/** The longest a CONNECT is held for a token (well inside the agent's 10 s connect timeout). */
export const ADMISSION_MAX_WAIT_MS = 1_000;

export interface AdmissionCounters {
  /** Connections let through to authentication (including exempt ones and those that waited). */
  admitted: number;
  /** Of `admitted`, those held for a token first. */
  delayed: number;
  /** Connections refused with "server unavailable" over the global rate. */
  refused: number;
  /** Connections refused with "server unavailable" over their address's rate (address-rate.ts). */
  refusedPerAddress: number;
  /** Connections held for a token right now. */
  waiting: number;
}

export interface AdmissionOptions {
  /** New connections per second; 0 admits everything. */
  rate: number;
  /** Connections admitted at once after a quiet spell (default: `rate`). */
  burst?: number;
  /** Hold a CONNECT up to this long for a token before refusing it (default ADMISSION_MAX_WAIT_MS; 0 refuses at once). */
  maxWaitMs?: number;
  logger: Logger;
  /** Milliseconds, for the bucket (tests inject one). */
  now?: () => number;
  /**
   * New connections per second from one remote address, with a burst of
   * twice as many (address-rate.ts); refused at once, never held. 0 or
   * absent: no per-address limit.
   */
  ratePerAddress?: number;
  /** How often at most a summary line is logged while connections are refused (default 1 s). */
  logIntervalMs?: number;
}

export interface ConnectionAdmission {
  preConnect: PreConnectHandler;
  /** Totals since start, for logs and metrics. */
  counters(): AdmissionCounters;
  /** Refuses every held connection and stops the timers (the broker is closing). */
  close(): void;
}

export function createConnectionAdmission(options: AdmissionOptions): ConnectionAdmission {
  const log = options.logger.child({ component: 'mqtt-admission' });
  const now = options.now ?? (() => performance.now());
  const maxWaitMs = options.maxWaitMs ?? ADMISSION_MAX_WAIT_MS;
  const logIntervalMs = options.logIntervalMs ?? 1_000;
  const bucket = options.rate > 0 ? new TokenBucket(options.rate, options.burst ?? options.rate, now) : undefined;
  const perAddress = options.ratePerAddress ? new AddressRate({ rate: options.ratePerAddress, now }) : undefined;
  const totals = { admitted: 0, delayed: 0, refused: 0, refusedPerAddress: 0 };
  const held = new Map<NodeJS.Timeout, (err: Error | null, ok: boolean) => void>();
  let closed = false;

  // One summary line per interval while refusing, never one per connection:
  // a storm of 10,000 refusals is one line a second, not 10,000.
  let window: { admitted: number; refused: number } | undefined;
  let summaryTimer: NodeJS.Timeout | undefined;
  const noteRefused = () => {
    if (!window) {
      window = { admitted: totals.admitted, refused: totals.refused - 1 };
      summaryTimer = setTimeout(summarize, logIntervalMs);
      summaryTimer.unref();
    }
  };
  const summarize = () => {
    summaryTimer = undefined;
    if (!window) return;
    const refused = totals.refused - window.refused;
    const admitted = totals.admitted - window.admitted;
    window = undefined;
    log.warn(
      { refused, admitted, waiting: held.size, rate: options.rate, totalRefused: totals.refused },
      'connection storm: refusing connections over the admission rate (--max-connect-rate); devices retry with backoff',
    );
  };

  // Per-address refusals get their own line per interval, naming a few of the addresses.
  let addressWindow: Map<string, number> | undefined;
  let addressTimer: NodeJS.Timeout | undefined;
  const noteRefusedAddress = (address: string) => {
    if (!addressWindow) {
      addressWindow = new Map();
      addressTimer = setTimeout(summarizeAddresses, logIntervalMs);
      addressTimer.unref();
    }
    if (addressWindow.size < 10 || addressWindow.has(address)) addressWindow.set(address, (addressWindow.get(address) ?? 0) + 1);
  };
  const summarizeAddresses = () => {
    addressTimer = undefined;
    if (!addressWindow) return;
    const addresses = Object.fromEntries(addressWindow);
    addressWindow = undefined;
    log.warn(
      { addresses, ratePerAddress: options.ratePerAddress, totalRefusedPerAddress: totals.refusedPerAddress },
      'refusing connections over the per-address rate (--max-connect-rate-per-address)',
    );
  };

  const refuse = (client: Client, callback: (err: Error | null, ok: boolean) => void, address?: string) => {
    if (address === undefined) {
      totals.refused++;
      noteRefused();
    } else {
      totals.refusedPerAddress++;
      noteRefusedAddress(address);
    }
    const why = address === undefined ? 'the connection admission rate' : 'the connection rate of its address';
    const err = Object.assign(new Error(`server busy: over ${why}`), { returnCode: SERVER_UNAVAILABLE });
    refuseConnect(client, SERVER_UNAVAILABLE, err, callback);
  };

  const preConnect: PreConnectHandler = (client, _packet, callback) => {
    if (closed) return callback(new Error('broker closing'), false);
    if (perAddress) {
      // Before the global bucket: a refused address must not spend everyone's tokens.
      const address = remoteAddress(client);
      if (address !== undefined && !perAddress.take(address)) return refuse(client, callback, addressKey(address));
    }
    if (!bucket) {
      totals.admitted++;
      return callback(null, true);
    }
    const waitMs = bucket.take(maxWaitMs);
    if (waitMs === undefined) return refuse(client, callback);
    if (waitMs === 0) {
      totals.admitted++;
      return callback(null, true);
    }
    const timer = setTimeout(() => {
      held.delete(timer);
      if (client.closed || client.conn.destroyed) {
        // Gone while waiting: its token goes to the next client.
        bucket.giveBack();
        return callback(new Error('connection closed while waiting for admission'), false);
      }
      totals.admitted++;
      totals.delayed++;
      callback(null, true);
    }, Math.ceil(waitMs));
    held.set(timer, callback);
  };

  return {
    preConnect,
    counters: () => ({ ...totals, waiting: held.size }),
    close() {
      closed = true;
      for (const [timer, callback] of held) {
        clearTimeout(timer);
        callback(new Error('broker closing'), false);
      }
      held.clear();
      clearTimeout(summaryTimer);
      summaryTimer = undefined;
      clearTimeout(addressTimer);
      addressTimer = undefined;
      // Whatever was refused in the last window still gets its line.
      if (window) summarize();
      if (addressWindow) summarizeAddresses();
    },
  };
}

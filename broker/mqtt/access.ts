/**
 * Who may do what on the broker, as Aedes hooks.
 *
 * Two kinds of client exist until per-device credentials arrive (issue 6):
 *
 * - **anonymous** — no username in CONNECT. Full access, as before: devices,
 *   the dispatcher and backend services connect this way today.
 * - **read-only** — a username and password from `readOnlyUsers` (dashboards).
 *   May subscribe only to device telemetry and status
 *   (`{root}/devices/{id|+}/{metrics,state,status,events,logs}`) and may
 *   publish nothing, not even a will.
 *
 * Any other username, or a wrong password, is refused at CONNECT with return
 * code 4 ("bad user name or password") [MQTT-3.2.2.3]: a client that presents
 * a username asks for an account, and silently granting it full access
 * instead would hide a typo behind more rights than it asked for.
 *
 * Invariant: the decisions are pure functions of (configured users, topic
 * root, what the client sent); the hooks only look them up and answer Aedes.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AedesOptions, Client } from 'aedes';
import type { Logger } from 'pino';
import type { DeviceChannel, Topics } from '../../shared/index.js';

export interface ReadOnlyUser {
  username: string;
  password: string;
}

/** What a read-only client may subscribe to, on one device or on `+`. */
export const READ_ONLY_CHANNELS = ['metrics', 'state', 'status', 'events', 'logs'] as const satisfies readonly DeviceChannel[];

export type Credentials = { access: 'anonymous' } | { access: 'read-only'; username: string } | { access: 'refused'; reason: string };

/**
 * Decides a CONNECT. Passwords are compared as SHA-256 digests with
 * `timingSafeEqual`, so neither the comparison's time nor a length mismatch
 * tells an attacker how much of a password was right.
 */
export function checkCredentials(users: readonly ReadOnlyUser[], username: string | undefined, password: Buffer | undefined): Credentials {
  if (username === undefined) return { access: 'anonymous' };
  const user = users.find((u) => u.username === username);
  const given = digest(password ?? Buffer.alloc(0));
  // Compare against something even for an unknown user, so both refusals take the same time.
  const expected = digest(Buffer.from(user?.password ?? '', 'utf8'));
  const match = timingSafeEqual(given, expected);
  if (!user) return { access: 'refused', reason: 'unknown username' };
  if (!match) return { access: 'refused', reason: 'wrong password' };
  return { access: 'read-only', username };
}

/** May a read-only client subscribe to `filter`? Only exact device telemetry/status filters; never `#`. */
export function mayReadOnlySubscribe(topics: Topics, filter: string): boolean {
  const parsed = topics.parseDeviceFilter(filter);
  return parsed !== undefined && (READ_ONLY_CHANNELS as readonly string[]).includes(parsed.channel);
}

export interface AccessControlOptions {
  readOnlyUsers: readonly ReadOnlyUser[];
  topics: Topics;
  logger: Logger;
}

export type AccessHooks = Required<Pick<AedesOptions, 'authenticate' | 'authorizePublish' | 'authorizeSubscribe'>>;

/** MQTT 3.1.1 CONNACK return code 4: bad user name or password. */
const BAD_USERNAME_OR_PASSWORD = 4;
const SYS_PREFIX = '$SYS/';

export function createAccessControl(options: AccessControlOptions): AccessHooks {
  const log = options.logger.child({ component: 'mqtt-access' });
  // Clients that logged in read-only; a WeakSet so a disconnected client leaves nothing behind.
  const readOnly = new WeakSet<Client>();
  return {
    authenticate(client, username, password, done) {
      const decision = checkCredentials(options.readOnlyUsers, username, password);
      if (decision.access === 'refused') {
        log.warn({ clientId: client.id, username, reason: decision.reason }, 'MQTT login refused');
        return done(Object.assign(new Error('bad user name or password'), { returnCode: BAD_USERNAME_OR_PASSWORD }), false);
      }
      if (decision.access === 'read-only') {
        readOnly.add(client);
        log.debug({ clientId: client.id, username }, 'read-only MQTT client connected');
      }
      done(null, true);
    },
    authorizePublish(client, packet, done) {
      // Aedes' own default: nobody publishes into $SYS.
      if (packet.topic.startsWith(SYS_PREFIX)) return done(new Error(`${SYS_PREFIX} topics are reserved`));
      // MQTT 3.1.1 has no way to refuse one PUBLISH: Aedes closes the connection [MQTT-3.3.5-2].
      if (client && readOnly.has(client)) {
        log.warn({ clientId: client.id, topic: packet.topic }, 'read-only MQTT client tried to publish');
        return done(new Error('read-only client may not publish'));
      }
      done(null);
    },
    authorizeSubscribe(client, subscription, done) {
      if (readOnly.has(client) && !mayReadOnlySubscribe(options.topics, subscription.topic)) {
        log.info({ clientId: client.id, topic: subscription.topic }, 'read-only MQTT subscription refused');
        // A null subscription is granted as 0x80, "failure" [MQTT-3.9.3-2]; the others in the packet still count.
        return done(null, null);
      }
      done(null, subscription);
    },
  };
}

function digest(value: Buffer): Buffer {
  return createHash('sha256').update(value).digest();
}

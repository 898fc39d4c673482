/**
 * Who may do what on the broker, as Aedes hooks. The decisions are the pure
 * functions of broker/auth/ (acl.ts, permissions.ts); the hooks look up the
 * identity a connection authenticated as and answer Aedes:
 *
 * - preConnect remembers the client id as sent: Aedes replaces an empty one
 *   with `aedes_<uuid>` before authenticate runs, and empty must be refused
 *   with a persistent session, which would have no id to be found again by
 *   [MQTT-3.1.3-8].
 * - authenticate: a bad client id → CONNACK 2 ("identifier rejected"); bad
 *   credentials → CONNACK 4 ("bad user name or password") after a delay that
 *   grows with the address's recent failures (broker/auth/login-delay.ts); no
 *   credentials while anonymous clients are not allowed → CONNACK 5 ("not
 *   authorized") [MQTT-3.2.2-5]; credentials that cannot be checked (the
 *   database is out of reach, or the check itself failed) → CONNACK 3
 *   ("server unavailable"), which tells the client to come back, not that it
 *   is refused.
 * - authorizePublish: a refused PUBLISH closes the connection, since MQTT
 *   3.1.1 cannot refuse one message otherwise [MQTT-3.3.5-2]. An API request
 *   for a method the caller's role may not call is the exception: the broker
 *   answers `forbidden` on the caller's response topic itself, and moves the
 *   request to a topic nobody receives (`$flotilla/…`, dropped in
 *   authorizeForward and never matched by `#` [MQTT-4.7.2-1]), so it never
 *   reaches the dispatcher, which therefore needs no identity of its own.
 * - authorizeSubscribe: a refused filter is granted 0x80 [MQTT-3.9.3-2]; the
 *   others in the SUBSCRIBE still count.
 * - authorizeForward: private messages (desired, commands, API responses,
 *   session data) reach only their owner, whatever a broad subscription matched.
 * - A refused publish or subscribe on a session's topics is also reported
 *   (`onSessionTopicRefused`), which the hub audits: someone tried a session
 *   that is not theirs.
 */
import type { AedesOptions, AedesPublishPacket, Client, ConnectPacket } from 'aedes';
import type { Logger } from 'pino';
import type { ApiResponse, Topics } from '../../shared/index.js';
import type { Signal } from '../../shared/signal.js';
import {
  type ClientIdOwners,
  clientIdProblem,
  clientIdRefusal,
  DROPPED_TOPIC_PREFIX,
  decidePublish,
  mayReceive,
  maySubscribe,
  type OpenSessionLookup,
  sessionReach,
} from '../auth/acl.js';
import type { Authenticator } from '../auth/authenticator.js';
import { describeIdentity, type Identity } from '../auth/identity.js';
import { LoginDelay, sleep } from '../auth/login-delay.js';
import { mayCall, requiredRole } from '../auth/permissions.js';
import { isDatabaseUnavailable } from '../store/pg/errors.js';
import { remoteAddress } from './client-address.js';

export interface AccessControlOptions {
  authenticator: Authenticator;
  owners: ClientIdOwners;
  topics: Topics;
  logger: Logger;
  loginDelay?: LoginDelay;
  /** The CN of a client certificate the TLS layer verified (broker/mqtt/tls-identity.ts), else undefined. */
  peerCommonName?: (client: Client) => string | undefined;
  /** Where `forbidden` answers go; the hub publishes them on the caller's response topic. */
  answers: Signal<ApiAnswer>;
  /** Whether the hub has a session open for a device (broker/remote/); none when not given. */
  isOpenSession?: OpenSessionLookup;
  /** A publish or subscribe on a session's topics was refused. */
  onSessionTopicRefused?: (refusal: SessionTopicRefusal) => void;
}

export interface SessionTopicRefusal {
  clientId: string;
  identity: Identity | undefined;
  action: 'publish' | 'subscribe';
  /** The topic, or the subscription's filter. */
  topic: string;
  reason: string;
}

/** A response for the client that sent an API request. */
export interface ApiAnswer {
  clientId: string;
  response: ApiResponse;
}

type Hooks = Required<Pick<AedesOptions, 'preConnect' | 'authenticate' | 'authorizePublish' | 'authorizeSubscribe' | 'authorizeForward'>>;

export interface AccessControl extends Hooks {
  identityOf(client: Client): Identity | undefined;
}

/** MQTT 3.1.1 CONNACK return codes (§3.2.2.3). */
const IDENTIFIER_REJECTED = 2;
const SERVER_UNAVAILABLE = 3;
const BAD_USERNAME_OR_PASSWORD = 4;
const NOT_AUTHORIZED = 5;

export function createAccessControl(options: AccessControlOptions): AccessControl {
  const { authenticator, owners, topics } = options;
  const log = options.logger.child({ component: 'mqtt-access' });
  const delay = options.loginDelay ?? new LoginDelay();
  // WeakMaps: a disconnected client leaves nothing behind.
  const sentIds = new WeakMap<Client, { clientId: string; clean: boolean }>();
  const identities = new WeakMap<Client, Identity>();

  const refuse = (returnCode: number, message: string) => Object.assign(new Error(message), { returnCode });

  /** Answers an API request the caller may not make, on its own response topic (only it receives that). */
  function answerForbidden(client: Client, identity: Identity, method: string, correlationId: string | null): void {
    const response: ApiResponse = {
      correlationId,
      ok: false,
      error: { code: 'forbidden', message: `method "${method}" needs role ${requiredRole(method)}` },
    };
    options.answers.emit({ clientId: client.id, response });
    log.warn({ clientId: client.id, ...describeIdentity(identity), method }, 'API request refused: role too low');
  }

  return {
    identityOf: (client) => identities.get(client),

    preConnect(client, packet: ConnectPacket, done) {
      sentIds.set(client, { clientId: packet.clientId ?? '', clean: packet.clean !== false });
      done(null, true);
    },

    authenticate(client, username, password, done) {
      const sent = sentIds.get(client) ?? { clientId: client.id, clean: client.clean };
      const clientId = sent.clientId;
      // Empty is judged once the identity is known (clientIdRefusal): an anonymous client may let the broker
      // assign one, but only for a clean session [MQTT-3.1.3-8].
      const problem = clientId !== '' ? clientIdProblem(clientId) : sent.clean ? undefined : 'empty client id with a persistent session';
      if (problem) {
        log.warn({ clientId, reason: problem }, 'MQTT client id refused');
        return done(refuse(IDENTIFIER_REJECTED, 'identifier rejected'), false);
      }
      const address = remoteAddress(client) ?? 'unknown';
      authenticator
        .login(username, password, options.peerCommonName?.(client))
        .then(async (result) => {
          if (!result.ok) {
            if (result.anonymous) {
              log.warn({ clientId, address, reason: result.reason }, 'MQTT login refused');
              return done(refuse(NOT_AUTHORIZED, 'not authorized'), false);
            }
            if (result.busy) {
              // A storm, not an attack: debug only, and no failed-login delay.
              log.debug({ clientId, address }, 'MQTT login deferred: too many credential checks waiting');
              return done(refuse(SERVER_UNAVAILABLE, 'server unavailable'), false);
            }
            const wait = delay.fail(address);
            log.warn({ clientId, username, address, reason: result.reason, delayMs: wait }, 'MQTT login refused');
            await sleep(wait);
            return done(refuse(BAD_USERNAME_OR_PASSWORD, 'bad user name or password'), false);
          }
          const identity = result.identity;
          const refusal = await clientIdRefusal(identity, clientId, owners);
          if (refusal) {
            log.warn({ clientId, ...describeIdentity(identity), reason: refusal }, 'MQTT client id refused');
            return done(refuse(IDENTIFIER_REJECTED, 'identifier rejected'), false);
          }
          identities.set(client, identity);
          if (identity.kind !== 'anonymous') {
            log.debug({ clientId, ...describeIdentity(identity) }, 'MQTT client authenticated');
          }
          done(null, true);
        })
        .catch((err: unknown) => {
          // The hub could not decide, which says nothing about the client: "not authorized" would tell a
          // device its credentials are bad (an agent then asks to be registered again), while "server
          // unavailable" makes it retry. A database outage is logged once by the database itself.
          if (isDatabaseUnavailable(err)) log.debug({ clientId, err: err.message }, 'MQTT login deferred: the database is out of reach');
          else log.error({ clientId, err }, 'MQTT authentication failed');
          done(refuse(SERVER_UNAVAILABLE, 'server unavailable'), false);
        });
    },

    authorizePublish(client, packet, done) {
      // A will published for a client no longer connected (another broker's, in a cluster): nobody to vouch for it.
      const identity = client ? identities.get(client) : undefined;
      if (!client || !identity) return done(new Error('publish from an unauthenticated client'));
      const decision = decidePublish(identity, client.id, packet.topic, topics, options.isOpenSession);
      if (decision.allow === true) return done(null);
      if (decision.allow === false) {
        log.warn(
          { clientId: client.id, ...describeIdentity(identity), topic: packet.topic, reason: decision.reason },
          'MQTT publish refused',
        );
        if (decision.session) {
          const refusal = { clientId: client.id, identity, action: 'publish', topic: packet.topic, reason: decision.reason } as const;
          options.onSessionTopicRefused?.(refusal);
        }
        return done(new Error(decision.reason));
      }
      // A request is for now, not for whoever subscribes next: never retained (a restarted dispatcher would run it again).
      packet.retain = false;
      const { method, correlationId } = peekRequest(packet.payload);
      // No method (not JSON, wrong shape): the dispatcher answers invalid_request without calling anything.
      if (method === undefined || mayCall(identity, method)) return done(null);
      answerForbidden(client, identity, method, correlationId);
      packet.topic = `${DROPPED_TOPIC_PREFIX}forbidden`;
      done(null);
    },

    authorizeSubscribe(client, subscription, done) {
      const identity = identities.get(client);
      if (identity && maySubscribe(identity, client.id, subscription.topic, topics)) return done(null, subscription);
      log.info(
        { clientId: client.id, ...(identity && describeIdentity(identity)), topic: subscription.topic },
        'MQTT subscription refused',
      );
      if (sessionReach(subscription.topic, topics) === 'only') {
        const reason = "a session's topics are its device's and the hub's alone";
        options.onSessionTopicRefused?.({ clientId: client.id, identity, action: 'subscribe', topic: subscription.topic, reason });
      }
      done(null, null);
    },

    authorizeForward(client, packet: AedesPublishPacket) {
      const identity = identities.get(client);
      return identity && mayReceive(identity, client.id, packet.topic, topics) ? packet : null;
    },
  };
}

/** The method and correlation id of an API request, if its payload is a JSON object naming them. */
export function peekRequest(payload: Buffer | string): { method: string | undefined; correlationId: string | null } {
  try {
    const value = JSON.parse(payload.toString()) as { method?: unknown; correlationId?: unknown } | null;
    return {
      method: typeof value?.method === 'string' ? value.method : undefined,
      correlationId: typeof value?.correlationId === 'string' ? value.correlationId : null,
    };
  } catch {
    return { method: undefined, correlationId: null };
  }
}

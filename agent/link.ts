/**
 * The agent's MQTT link to the hub: online status with a will, the retained
 * desired state in, the retained reported state out, and telemetry through
 * the outbox.
 *
 * The link never blocks the agent: it connects in the background, and the
 * reconcile loop keeps running what it was told while the hub is away.
 * - State: only the latest report is kept (it is retained and whole, so older
 *   reports are worthless once a newer one exists).
 * - Events and log batches always go through the outbox (outbox/outbox.ts),
 *   which holds them until the hub acknowledges them, across outages and
 *   agent restarts; metric samples go through it only while the link is
 *   down (live ones are QoS 0: the next sample supersedes a lost one).
 * - The outbox is drained in priority order with at most MAX_IN_FLIGHT
 *   unacknowledged messages and paced to `uplinkBytesPerSecond`.
 * - Reconnects back off with full jitter (reconnect-backoff.ts) over a
 *   persistent session. MQTT.js's own buffering is off: it would keep QoS 0
 *   messages offline without bound, and its `reconnect()` replaces its QoS 1
 *   store, silently losing what was in flight. So on every lost connection
 *   the link takes back what was in flight and sends it again after the
 *   reconnect; the hub drops the copies it already has by their `seq`.
 * - Remote access (agent/remote/): commands come in on `commands` (QoS 1)
 *   and session frames on the device's session `down` topics (QoS 0), both
 *   subscribed at every connect. Replies and frames go out live and never
 *   through the outbox or the pacer: a reply the hub stopped waiting for is
 *   worthless, and a session's own credit window bounds its frames.
 * - Telemetry payloads (events, logs, metrics) go out compressed
 *   (shared/telemetry-encoding.ts) once the hub has said on this connection
 *   that it decodes them (its `telemetry.link` command, `acceptEncodings`);
 *   until then, and always to an older hub, as plain JSON. The outbox keeps
 *   plain JSON either way: a backlog may meet another hub. Live samples go
 *   as deltas against the connection's last whole one (`liveSample`).
 * - The will states the protocol version the agent speaks; a hub that speaks
 *   another refuses the connection (CONNACK 1, shared/protocol-version.ts),
 *   which no retry soon will change: the link says so in one line and
 *   retries on the much longer PROTOCOL_REFUSED_RECONNECT schedule.
 */
import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import {
  Command,
  type CommandReply,
  DesiredState,
  type DeviceEvent,
  type DeviceState,
  type DeviceStatus,
  decode,
  formatIssues,
  type LogBatch,
  type Metrics,
  type Topics,
} from '../shared/index.js';
import { AGENT_PROTOCOL_VERSION } from '../shared/protocol-version.js';
import {
  encodeTelemetryPayload,
  MAX_BASE_BYTES,
  METRIC_BASE_EVERY,
  type TelemetryBase,
  type TelemetryEncoding,
} from '../shared/telemetry-encoding.js';
import { connectRefusal } from './connect-refusal.js';
import { expectMqttInternals, forgetInFlight, unacknowledgedCount } from './mqtt-internals.js';
import type { OutboxClass } from './outbox/classes.js';
import { describeDrops } from './outbox/drop-report.js';
import { Outbox, type OutboxOptions, type OutboxStats } from './outbox/outbox.js';
import { IN_MEMORY } from './outbox/outbox-file.js';
import { BytePacer } from './outbox/pacer.js';
import { type BackoffPolicy, DEFAULT_RECONNECT, reconnectDelay } from './reconnect-backoff.js';
import { type TakeoverPolicy, TakeoverWatch } from './takeover-watch.js';

/**
 * Outbox messages sent and not yet acknowledged, at most. MQTT.js keeps each
 * in memory until its PUBACK; the rest wait in the outbox, which is bounded.
 */
export const MAX_IN_FLIGHT = 8;

/** Drops are reported (a warning and an `outbox-dropped` event) at most this often. */
export const DROP_REPORT_INTERVAL_MS = 60_000;

/**
 * Retries after the hub refused this agent's protocol version: only an
 * upgrade on one side ends that, so a refused fleet knocks once in minutes,
 * not once a minute, and is back within ten minutes of the upgrade.
 */
export const PROTOCOL_REFUSED_RECONNECT: BackoffPolicy = { baseMs: 60_000, maxMs: 600_000 };

export interface LinkOptions {
  hubUrl: string;
  deviceId: string;
  topics: Topics;
  logger: Logger;
  onDesired: (desired: DesiredState) => void;
  /** Told of a desired document for another device that arrived on this device's topic (dropped; the agent reports it). */
  onForeignDesired?: (desired: DesiredState) => void;
  /** Minimum time between two state publications. */
  stateIntervalMs: number;
  /** How the link retries the hub (default: 1 s window doubling to 60 s, full jitter). */
  reconnect?: BackoffPolicy;
  /** When and how long the link backs off after its connection keeps being taken over (default DEFAULT_TAKEOVER). */
  takeover?: TakeoverPolicy;
  /** MQTT keepalive in seconds (default 30). */
  keepaliveSeconds?: number;
  /** Where undelivered telemetry waits (default: in memory, 16 MiB). */
  outbox?: Omit<OutboxOptions, 'onDrop'>;
  /** What the outbox may send per second (0 = unlimited; default 0). */
  uplinkBytesPerSecond?: number;
  /** Told, at most once per DROP_REPORT_INTERVAL_MS, what the outbox dropped (the agent makes it an event). */
  onOutboxDrops?: (summary: string) => void;
  /** The device's secret from registration: MQTT username is the device id, password this. */
  secret?: string;
  /** TLS (mqtts/wss): the CA to trust instead of the system's (pinned), and a client certificate for mTLS (PEM text). */
  tls?: { ca?: string; cert?: string; key?: string };
  /** The protocol version stated to the hub (default AGENT_PROTOCOL_VERSION; tests play other releases' agents). */
  protocolVersion?: number;
  /** How the link retries a hub that refused its protocol version (default PROTOCOL_REFUSED_RECONNECT). */
  protocolRefusedReconnect?: BackoffPolicy;
  /** A schema-checked command from the hub's `commands` topic (remote access). */
  onCommand?: (command: Command) => void;
  /** One frame of a remote session, as it arrived on the session's `down` topic. */
  onSessionFrame?: (sessionId: string, frame: Buffer) => void;
  /** The connection to the hub is gone (remote sessions end with it). */
  onConnectionLost?: () => void;
  /** The hub acknowledged a state report (its PUBACK): the agent's own upgrade takes that as healthy (agent/upgrade/). */
  onStateAcknowledged?: () => void;
  /** `auto` (default): compress telemetry for a hub that decodes it; `off`: plain JSON always. */
  encoding?: 'auto' | 'off';
}

export class Link {
  private readonly client: MqttClient;
  private readonly log: Logger;
  private pendingState: DeviceState | undefined;
  private lastPublished = '';
  private lastPublishedAt = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  private wasConnected = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private failedAttempts = 0;
  private closing = false;
  private readonly outbox: Outbox;
  private readonly pacer: BytePacer;
  private inFlight = 0;
  /** Bumped on every lost connection: acks of an older connection are stale (their messages were taken back). */
  private connection = 0;
  private pumpTimer: NodeJS.Timeout | undefined;
  private lastDropReport = Number.NEGATIVE_INFINITY;
  private dropReportTimer: NodeJS.Timeout | undefined;
  private readonly takeovers: TakeoverWatch;
  private connectedAt = 0;
  /** The hub ended the current connection (its socket ended), as it does when another client takes the id. */
  private closedByHub = false;
  /** The last attempt was refused for its protocol version: the next waits on PROTOCOL_REFUSED_RECONNECT. */
  private protocolRefused = false;
  private protocolRefusals = 0;
  /** How this connection's telemetry payloads go out: set by the hub's word on this connection, cleared at every connect. */
  private wireEncoding: TelemetryEncoding | undefined;
  /** The last live sample sent whole on this connection, and how many deltas were sent against it since. */
  private metricBase: (TelemetryBase & { deltas: number }) | undefined;

  constructor(private readonly options: LinkOptions) {
    const { topics, deviceId } = options;
    this.log = options.logger.child({ component: 'link' });
    this.outbox = new Outbox({ path: IN_MEMORY, maxBytes: 16 * 1024 * 1024, ...options.outbox, onDrop: () => this.reportDrops() });
    this.pacer = new BytePacer(options.uplinkBytesPerSecond ?? 0);
    this.takeovers = new TakeoverWatch(options.takeover);
    const protocol = options.protocolVersion ?? AGENT_PROTOCOL_VERSION;
    // The will carries the protocol statement: the hub reads it from the CONNECT (shared/protocol-version.ts).
    const offline: DeviceStatus = { online: false, at: new Date().toISOString(), protocol };
    this.client = mqtt.connect(options.hubUrl, {
      clientId: deviceId,
      protocolVersion: 4,
      // A persistent session: what the broker holds for this device (QoS 1
      // desired-state updates) waits for it across a dropped link.
      clean: false,
      // See AgentConfig.keepaliveSeconds for the default's reasons.
      keepalive: options.keepaliveSeconds ?? 30,
      connectTimeout: 10_000,
      // The reconnect loop is ours (scheduleReconnect): backoff with full jitter.
      reconnectPeriod: 0,
      // Nothing piles up in MQTT.js while offline: the outbox holds what matters.
      queueQoSZero: false,
      // Without this mqtt-packet keeps a Buffer for each of the 65,536 two-byte
      // numbers a packet may carry, built on the first write: 6.8 MiB of the
      // agent's ~22 MiB heap (heap snapshot, 3 apps), to save a 2-byte write per packet.
      writeCache: false,
      // A dead device must show offline: the broker publishes this when the
      // connection drops without a DISCONNECT [MQTT-3.1.2-8].
      will: { topic: topics.device(deviceId, 'status'), payload: Buffer.from(JSON.stringify(offline)), qos: 1, retain: true },
      ...(options.secret !== undefined ? { username: deviceId, password: options.secret } : {}),
      // A pinned CA replaces the system's trust store: only the fleet's own CA can vouch for the hub.
      ...(options.tls?.ca !== undefined ? { ca: options.tls.ca, rejectUnauthorized: true } : {}),
      ...(options.tls?.cert !== undefined ? { cert: options.tls.cert } : {}),
      ...(options.tls?.key !== undefined ? { key: options.tls.key } : {}),
    });
    expectMqttInternals(this.client);
    this.client.on('connect', () => this.onConnect());
    this.client.on('close', () => {
      if (this.wasConnected) this.tell('connection lost', () => options.onConnectionLost?.());
      const takeover = this.wasConnected && !this.closing ? this.connectionEnded() : undefined;
      // One line per outage, not one per reconnect attempt; none of reconnecting when the agent is stopping.
      if (this.wasConnected && this.closing) this.log.info({ hubUrl: options.hubUrl }, 'disconnected from hub');
      else if (this.wasConnected && !takeover)
        this.log.warn({ hubUrl: options.hubUrl }, 'disconnected from hub; apps keep running, reconnecting');
      this.wasConnected = false;
      this.takeBackInFlight();
      this.scheduleReconnect(takeover);
    });
    this.client.on('error', (err: Error & { code?: unknown }) => {
      switch (connectRefusal(err.code)) {
        case 'protocol':
          this.protocolRefused = true;
          this.log.error(
            { hubUrl: options.hubUrl, protocol },
            `the hub at ${options.hubUrl} refused this agent's protocol version ${protocol}: it speaks others (\`flotilla version\` lists them); upgrade the hub or the agent so both speak one version. Retrying every few minutes`,
          );
          return;
        case 'credentials':
          // Not a flaky link: retrying will not help until someone acts, so say what to do.
          this.log.error(
            { hubUrl: options.hubUrl, err: err.message },
            'the hub refused this device (revoked, or a wrong id, secret or certificate); retrying, but it needs `flotilla agent register` again',
          );
          return;
        case 'unavailable':
          this.log.warn(
            { hubUrl: options.hubUrl, err: err.message },
            'the hub cannot take this device just now (its database is out of reach, or it is busy); retrying, nothing to do here',
          );
          return;
        case 'unreachable':
          this.log.warn({ hubUrl: options.hubUrl, err: err.message }, 'hub unreachable; retrying');
      }
    });
    this.client.on('message', (topic, payload) => this.onMessage(topic, payload));
  }

  get connected(): boolean {
    return this.client.connected;
  }

  /** Queues a state report; publishes at most one per interval, always the newest. */
  publishState(state: DeviceState): void {
    this.pendingState = state;
    this.scheduleFlush();
  }

  /** Queues an event in the outbox: delivered once the hub has it, across outages and restarts, unless dropped (and reported). */
  publishEvent(event: DeviceEvent): void {
    this.enqueue('events', event);
  }

  /** The outbox takes every batch (it is bounded in bytes and drops what it must, counted). */
  get canSendLogs(): boolean {
    return !this.closing;
  }

  /** Queues a log batch in the outbox; false only once the link is closing. */
  publishLogs(batch: LogBatch): boolean {
    if (this.closing) return false;
    this.enqueue('logs', batch);
    return true;
  }

  /**
   * A metric sample goes out at once at QoS 0 while the link is up and no
   * older samples wait (a lost one is a gap in a graph); otherwise it waits
   * in the outbox, at the lowest priority, and goes at QoS 1 from there.
   */
  publishMetrics(sample: Metrics): boolean {
    if (this.closing) return false;
    if (this.client.connected && this.outbox.pending('metrics') === 0) {
      this.client.publish(this.options.topics.device(this.options.deviceId, 'metrics'), this.liveSample(sample), { qos: 0 });
      return true;
    }
    this.enqueue('metrics', sample);
    return true;
  }

  /**
   * The encodings the hub decodes, as it listed them on this connection: the
   * first this agent speaks is used until the connection ends (the next hub
   * may be an older one). Nothing changes with encoding `off`.
   */
  acceptEncodings(encoding: TelemetryEncoding | undefined): void {
    if (this.options.encoding === 'off' || encoding === this.wireEncoding || !this.client.connected) return;
    this.wireEncoding = encoding;
    this.metricBase = undefined;
    this.log.info({ encoding: encoding ?? 'plain JSON' }, 'telemetry encoding for this connection');
  }

  /** The encoding telemetry goes out in on this connection (undefined: plain JSON). */
  get telemetryEncoding(): TelemetryEncoding | undefined {
    return this.wireEncoding;
  }

  /** A command's reply, QoS 1, if the link is up: never queued (the hub waits for it only briefly). */
  publishReply(reply: CommandReply): boolean {
    if (this.closing || !this.client.connected) return false;
    this.client.publish(this.options.topics.device(this.options.deviceId, 'replies'), JSON.stringify(reply), { qos: 1 });
    return true;
  }

  /** One remote-session frame, QoS 0, straight to the socket if the link is up (the session's window bounds what is in flight). */
  publishSessionFrame(sessionId: string, frame: Buffer): boolean {
    if (this.closing || !this.client.connected) return false;
    this.client.publish(this.options.topics.session(this.options.deviceId, sessionId, 'up'), frame, { qos: 0 });
    return true;
  }

  /** QoS 1 messages MQTT.js holds awaiting their PUBACK (the window keeps this at most MAX_IN_FLIGHT plus a state report). */
  get unacknowledged(): number {
    return unacknowledgedCount(this.client);
  }

  /** What the outbox holds now, and has dropped since the start. */
  get outboxStats(): OutboxStats {
    return this.outbox.stats;
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.flushTimer);
    clearTimeout(this.pumpTimer);
    clearTimeout(this.dropReportTimer);
    try {
      await this.closeClient();
    } finally {
      // Whatever is unacknowledged stays in the outbox file for the next start.
      this.outbox.close();
    }
  }

  private async closeClient(): Promise<void> {
    if (this.client.connected) {
      this.flushNow();
      const status: DeviceStatus = { online: false, at: new Date().toISOString() };
      // A link that died silently still looks connected: never wait long for
      // the acknowledgement. If it does not come, the broker publishes the will.
      const published = this.client
        .publishAsync(this.options.topics.device(this.options.deviceId, 'status'), JSON.stringify(status), { qos: 1, retain: true })
        .then(() => true)
        .catch(() => false);
      const acknowledged = await Promise.race([
        published,
        new Promise<false>((resolve) => setTimeout(() => resolve(false), 2_000).unref()),
      ]);
      if (!acknowledged) return void (await this.client.endAsync(true));
    }
    await this.client.endAsync(!this.client.connected);
  }

  /** Whether the connection that just ended continues a takeover streak (takeover-watch.ts), and if so says so. */
  private connectionEnded(): number | undefined {
    const verdict = this.takeovers.ended({ livedMs: Date.now() - this.connectedAt, byHub: this.closedByHub });
    if (!verdict) return undefined;
    this.log.error(
      { deviceId: this.options.deviceId, hubUrl: this.options.hubUrl, takenOver: verdict.streak, retryInMs: verdict.delayMs },
      'the hub keeps closing this connection soon after it is made: another agent is probably using this device id (a copied SD card?); backing off. Give each device its own id (flotilla agent register)',
    );
    return verdict.delayMs;
  }

  /**
   * The next attempt after a lost or failed connection, at a random point of
   * a window that doubles per failure, or after `takeoverDelayMs` while
   * another agent keeps taking this device's connection.
   */
  private scheduleReconnect(takeoverDelayMs?: number): void {
    if (this.closing || this.reconnectTimer) return;
    const refused = this.protocolRefused;
    this.protocolRefused = false;
    const delayMs =
      takeoverDelayMs ??
      (refused
        ? protocolRefusedDelay(this.protocolRefusals++, this.options.protocolRefusedReconnect ?? PROTOCOL_REFUSED_RECONNECT)
        : reconnectDelay(this.failedAttempts++, this.options.reconnect ?? DEFAULT_RECONNECT));
    this.log.debug({ delayMs, attempt: this.failedAttempts }, 'reconnecting to hub');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.closing) this.client.reconnect();
    }, delayMs);
  }

  private onConnect(): void {
    const { topics, deviceId } = this.options;
    this.wasConnected = true;
    this.failedAttempts = 0;
    this.protocolRefusals = 0;
    this.connectedAt = Date.now();
    this.closedByHub = false;
    // Plain JSON until this hub says it decodes more (it may not be the hub of the last connection).
    this.wireEncoding = undefined;
    this.metricBase = undefined;
    const connection = this.connection;
    // 'end' is the peer's FIN: the hub closed the connection. A reset, a keepalive timeout or our own end() is not one.
    this.client.stream.once('end', () => {
      if (connection === this.connection) this.closedByHub = true;
    });
    this.log.info({ hubUrl: this.options.hubUrl }, 'connected to hub');
    const status: DeviceStatus = { online: true, at: new Date().toISOString() };
    this.client.publish(topics.device(deviceId, 'status'), JSON.stringify(status), { qos: 1, retain: true });
    this.subscribe(topics.device(deviceId, 'desired'), 1, 'desired state');
    // Remote access's topics, when the agent takes part in it.
    if (this.options.onCommand) this.subscribe(topics.device(deviceId, 'commands'), 1, 'commands');
    if (this.options.onSessionFrame) this.subscribe(topics.deviceSessions(deviceId, 'down'), 0, 'session frames');
    // The hub may have lost what we last reported (broker restart): report again.
    this.lastPublished = '';
    this.scheduleFlush();
    // What waited while the hub was away, by priority and age.
    this.pump();
  }

  private subscribe(filter: string, qos: 0 | 1, what: string): void {
    this.client.subscribe(filter, { qos }, (err) => {
      if (err) this.log.error({ err: err.message }, `subscribing to ${what} failed`);
    });
  }

  /** Calls a listener; what it throws is logged, never thrown into MQTT.js. */
  private tell(what: string, listener: () => void): void {
    try {
      listener();
    } catch (err) {
      this.log.error({ err }, `handling ${what} failed`);
    }
  }

  private enqueue(cls: OutboxClass, message: object): void {
    this.outbox.push(cls, Buffer.from(JSON.stringify(message)));
    this.pump();
  }

  /** Sends from the outbox while the link is up, the window has room and the pacer allows. */
  private pump(): void {
    if (this.pumpTimer || !this.client.connected || this.closing) return;
    while (this.inFlight < MAX_IN_FLIGHT) {
      const message = this.outbox.next();
      if (!message) return;
      const payload = this.toWire(message.payload);
      const waitMs = this.pacer.tryTake(payload.length);
      if (waitMs > 0) {
        this.pumpTimer = setTimeout(() => {
          this.pumpTimer = undefined;
          this.pump();
        }, waitMs);
        return;
      }
      this.outbox.take(message);
      this.inFlight++;
      const connection = this.connection;
      const topic = this.options.topics.device(this.options.deviceId, message.cls);
      this.client.publish(topic, payload, { qos: 1 }, (err) => {
        // A lost connection took its messages back already (takeBackInFlight).
        if (connection !== this.connection) return;
        this.inFlight--;
        if (err) this.outbox.release(message);
        else this.outbox.ack(message);
        this.pump();
      });
    }
  }

  /**
   * A live sample's payload: whole every METRIC_BASE_EVERY samples and first
   * on a connection, a delta against the last whole one in between
   * (shared/telemetry-encoding.ts says how the hub restores it, and what a
   * lost sample costs).
   */
  private liveSample(sample: Metrics): Buffer {
    const plain = Buffer.from(JSON.stringify(sample));
    if (this.wireEncoding === undefined) return plain;
    const base = this.metricBase;
    if (base && base.deltas < METRIC_BASE_EVERY - 1) {
      base.deltas++;
      return encodeTelemetryPayload(plain, this.wireEncoding, base);
    }
    // A sample too large to be a base (hundreds of containers) goes whole each time.
    this.metricBase = plain.length <= MAX_BASE_BYTES ? { seq: sample.seq, plain, deltas: 0 } : undefined;
    return encodeTelemetryPayload(plain, this.wireEncoding);
  }

  /** A telemetry payload (plain JSON) as it goes on the wire on this connection. */
  private toWire(plain: Buffer): Buffer {
    return this.wireEncoding === undefined ? plain : encodeTelemetryPayload(plain, this.wireEncoding);
  }

  /** The connection is gone and with it every PUBACK still to come: offer its messages again. */
  private takeBackInFlight(): void {
    // MQTT.js keeps a callback per unacknowledged QoS 1 message across its
    // reconnect(), which drops the messages themselves: those callbacks never
    // fire, and a graceful end() would wait for them forever.
    forgetInFlight(this.client);
    this.connection++;
    this.inFlight = 0;
    clearTimeout(this.pumpTimer);
    this.pumpTimer = undefined;
    this.outbox.releaseAll();
  }

  /** Logs and reports the outbox's drops, at most once per DROP_REPORT_INTERVAL_MS. */
  private reportDrops(): void {
    if (this.dropReportTimer || this.closing) return;
    const waitMs = this.lastDropReport + DROP_REPORT_INTERVAL_MS - Date.now();
    if (waitMs > 0) {
      this.dropReportTimer = setTimeout(() => {
        this.dropReportTimer = undefined;
        this.reportDrops();
      }, waitMs);
      this.dropReportTimer.unref();
      return;
    }
    const drops = this.outbox.takeDrops();
    if (!drops) return;
    this.lastDropReport = Date.now();
    const summary = describeDrops(drops);
    this.log.warn({ drops, outbox: this.outbox.stats }, summary);
    this.options.onOutboxDrops?.(summary);
  }

  private onMessage(topic: string, payload: Buffer): void {
    const parsed = this.options.topics.parse(topic);
    if (parsed?.kind === 'session' && parsed.direction === 'down' && parsed.deviceId === this.options.deviceId) {
      const { sessionId } = parsed;
      this.tell('a session frame', () => this.options.onSessionFrame?.(sessionId, payload));
      return;
    }
    if (parsed?.kind === 'device' && parsed.channel === 'commands' && parsed.deviceId === this.options.deviceId) {
      this.onCommandMessage(topic, payload);
      return;
    }
    if (parsed?.kind !== 'device' || parsed.channel !== 'desired' || parsed.deviceId !== this.options.deviceId) {
      this.log.debug({ topic }, 'ignoring message on unexpected topic');
      return;
    }
    if (payload.length === 0) return;
    const result = decode(DesiredState, payload);
    if (!result.ok) {
      this.log.warn({ topic, reason: formatIssues(result.issues) }, 'invalid desired state dropped');
      return;
    }
    if (result.value.deviceId !== this.options.deviceId) {
      this.log.warn({ topic, deviceId: result.value.deviceId }, 'desired state for another device dropped');
      this.options.onForeignDesired?.(result.value);
      return;
    }
    try {
      this.options.onDesired(result.value);
    } catch (err) {
      this.log.error({ err }, 'handling desired state failed');
    }
  }

  private onCommandMessage(topic: string, payload: Buffer): void {
    const result = decode(Command, payload);
    if (!result.ok) {
      this.log.warn({ topic, reason: formatIssues(result.issues) }, 'invalid command dropped');
      return;
    }
    this.tell('a command', () => this.options.onCommand?.(result.value));
  }

  private scheduleFlush(): void {
    if (this.flushTimer || !this.client.connected) return;
    const wait = Math.max(0, this.lastPublishedAt + this.options.stateIntervalMs - Date.now());
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      this.flushNow();
    }, wait);
  }

  private flushNow(): void {
    const state = this.pendingState;
    if (!state || !this.client.connected) return;
    const fingerprint = stateFingerprint(state);
    if (fingerprint === this.lastPublished) return;
    this.lastPublished = fingerprint;
    this.lastPublishedAt = Date.now();
    this.client.publish(
      this.options.topics.device(this.options.deviceId, 'state'),
      JSON.stringify(state),
      { qos: 1, retain: true },
      (err) => {
        if (!err) this.tell('a state acknowledgement', () => this.options.onStateAcknowledged?.());
      },
    );
  }
}

/** Half the window plus a random half: a refused agent never comes back within half a window. */
function protocolRefusedDelay(attempt: number, policy: BackoffPolicy): number {
  const window = Math.min(policy.maxMs, policy.baseMs * 2 ** attempt);
  return Math.floor(window / 2 + reconnectDelay(attempt, policy) / 2);
}

/**
 * What makes a state report worth sending: everything but its time and
 * Docker's human status text ("Up 3 minutes"), which changes every minute for
 * a container's first hour and would otherwise be most of a quiet device's
 * reports (`startedAt` already says when it started).
 */
function stateFingerprint(state: DeviceState): string {
  const { reportedAt: _time, ...content } = state;
  return JSON.stringify({
    ...content,
    apps: content.apps.map((app) => ({ ...app, containers: app.containers.map(({ status: _status, ...container }) => container) })),
  });
}

/**
 * The dispatcher: an ordinary MQTT client of the broker (so it can also run
 * against an external one). It routes every message it receives in one place:
 *
 *   devices/+/state   → record reported state (and labels) → advance rollouts → maybe re-plan desired
 *   devices/+/status  → record online/offline
 *   api/+/request     → run an API method → publish the correlated response
 *
 * and publishes each device's desired document, retained at QoS 1. A timer
 * advances rollouts too, so a device that never reports still times out.
 *
 * Invariants:
 * - A device's desired revision only grows, even across a lost hub database:
 *   a device that reports a higher observed revision pushes the counter past it.
 * - A desired document is republished only when its content hash changes, so
 *   re-applying an unchanged spec never wakes a device.
 * - A bad message is logged with its reason and dropped; nothing here throws
 *   out of the message handler.
 */
import type { MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import {
  ApiRequest,
  type ApiResponse,
  type DesiredState,
  DeviceState,
  DeviceStatus,
  decode,
  formatIssues,
  type ParsedTopic,
  type Topics,
} from '../../shared/index.js';
import type { AppStore } from '../store/apps.js';
import type { DeviceStore, StoredDevice } from '../store/devices.js';
import type { SecretStore } from '../store/secrets.js';
import type { HubApi } from './api.js';
import { toErrorBody } from './errors.js';
import type { Rollout } from './rollout-plan.js';
import type { Rollouts } from './rollouts.js';
import { desiredAppsFor, desiredHash, MissingSecretError } from './scheduling.js';

export interface DispatcherDeps {
  mqtt: MqttClient;
  topics: Topics;
  apps: AppStore;
  devices: DeviceStore;
  secrets: SecretStore;
  api: HubApi;
  rollouts: Rollouts;
  logger: Logger;
  now?: () => Date;
  /** How often rollouts are advanced without a device report (device timeouts); default 1 s. */
  rolloutTickMs?: number;
}

export class Dispatcher {
  private readonly log: Logger;
  private readonly now: () => Date;
  private syncScheduled = false;
  private rolloutTimer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: DispatcherDeps) {
    this.log = deps.logger.child({ component: 'dispatcher' });
    this.now = deps.now ?? (() => new Date());
  }

  /** Subscribes, republishes every stored desired document (the broker's retained store may be empty after a restart), then syncs. */
  async start(): Promise<void> {
    const { mqtt, topics } = this.deps;
    mqtt.on('message', (topic, payload) => this.route(topic, payload));
    const filters = [topics.allDevices('state'), topics.allDevices('status'), topics.allApiRequests()];
    await mqtt.subscribeAsync(Object.fromEntries(filters.map((filter) => [filter, { qos: 1 as const }])));
    // Online flags from before a restart are stale: the broker's retained
    // status messages are gone with it. Devices say so again when they reconnect.
    this.deps.devices.markAllOffline();
    for (const device of this.deps.devices.list()) {
      if (device.desired) this.publishDesired(device.desired);
    }
    this.syncAll();
    this.rolloutTimer = setInterval(() => this.advanceRollouts(), this.deps.rolloutTickMs ?? 1000);
    this.rolloutTimer.unref();
  }

  stop(): void {
    clearInterval(this.rolloutTimer);
    this.rolloutTimer = undefined;
  }

  /** Moves rollouts on; a rollout that changed may change what devices must run. */
  advanceRollouts(): void {
    try {
      if (this.deps.rollouts.advanceAll()) this.scheduleSync();
    } catch (err) {
      this.log.error({ err }, 'advancing rollouts failed');
    }
  }

  /** Coalesces bursts of changes (an apply, a relabel) into one pass over the fleet. */
  scheduleSync(): void {
    if (this.syncScheduled) return;
    this.syncScheduled = true;
    setImmediate(() => {
      this.syncScheduled = false;
      this.syncAll();
    });
  }

  /** Re-plans every device that has reported its state (see ingestStatus for why not the others). */
  syncAll(): void {
    const apps = this.deps.apps.list();
    const rollouts = this.deps.rollouts.snapshot(apps);
    for (const device of this.deps.devices.list()) {
      if (device.state) this.syncDevice(device, apps, rollouts);
    }
  }

  /** `device` as just read from the store: a fleet-wide pass reads every device once, not once more each. */
  private syncDevice(
    device: StoredDevice,
    apps = this.deps.apps.list(),
    rollouts: ReadonlyMap<string, Rollout> = this.deps.rollouts.snapshot(apps),
  ): void {
    const deviceId = device.id;
    let desiredApps: DesiredState['apps'];
    try {
      desiredApps = desiredAppsFor(
        device.id,
        device.labels,
        apps,
        (name) => this.deps.secrets.get(name),
        (app) => this.deps.rollouts.versionFor(app, device.id, rollouts),
      );
    } catch (err) {
      if (!(err instanceof MissingSecretError)) throw err;
      this.log.error(
        { deviceId, secret: err.secret, path: err.path },
        'cannot compute desired state: missing secret; device keeps its last desired state',
      );
      return;
    }
    const hash = desiredHash(desiredApps);
    const behind = (device.observedRevision ?? 0) > device.desiredRevision;
    if (hash === device.desiredHash && !behind) return;
    const desired: DesiredState = {
      deviceId: device.id,
      revision: Math.max(device.desiredRevision, device.observedRevision ?? 0) + 1,
      issuedAt: this.now().toISOString(),
      apps: desiredApps,
    };
    this.deps.devices.recordDesired(desired, hash);
    this.publishDesired(desired);
    this.log.info(
      { deviceId, revision: desired.revision, apps: desiredApps.map((a) => `${a.name}@${a.revision}`) },
      'desired state published',
    );
  }

  private publishDesired(desired: DesiredState): void {
    const topic = this.deps.topics.device(desired.deviceId, 'desired');
    this.deps.mqtt.publish(topic, JSON.stringify(desired), { qos: 1, retain: true }, (err) => {
      if (err) this.log.warn({ deviceId: desired.deviceId, err: err.message }, 'publishing desired state failed');
    });
  }

  private route(topic: string, payload: Buffer): void {
    const parsed = this.deps.topics.parse(topic);
    try {
      if (!parsed) {
        this.log.debug({ topic }, 'ignoring message on unknown topic');
        return;
      }
      if (payload.length === 0) {
        // A cleared retained message is not a report; an empty request is a mistake worth a log line.
        if (parsed.kind === 'api') this.log.warn({ topic }, 'empty API request dropped');
        return;
      }
      this.handle(parsed, payload);
    } catch (err) {
      this.log.error({ topic, err }, 'message handler failed; message dropped');
    }
  }

  private handle(parsed: ParsedTopic, payload: Buffer): void {
    if (parsed.kind === 'api') {
      if (parsed.channel === 'request') this.handleRequest(parsed.clientId, payload);
      return;
    }
    if (parsed.channel === 'state') this.ingestState(parsed.deviceId, payload);
    else if (parsed.channel === 'status') this.ingestStatus(parsed.deviceId, payload);
  }

  private ingestState(deviceId: string, payload: Buffer): void {
    const result = decode(DeviceState, payload);
    if (!result.ok) {
      this.drop('state', deviceId, formatIssues(result.issues));
      return;
    }
    const state = result.value;
    if (state.deviceId !== deviceId) {
      this.drop('state', deviceId, `deviceId "${state.deviceId}" does not match the topic`);
      return;
    }
    const isNew = this.deps.devices.ensure(deviceId);
    const before = this.deps.devices.get(deviceId)!;
    this.deps.devices.recordState(state);
    if (isNew) this.log.info({ deviceId, labels: state.labels }, 'device registered');
    const labelsChanged = JSON.stringify(before.reportedLabels) !== JSON.stringify(state.labels);
    const neverIssued = before.desiredHash === null;
    if (neverIssued || labelsChanged || state.observedRevision > before.desiredRevision) this.syncDevice(this.deps.devices.get(deviceId)!);
    this.advanceRollouts();
  }

  private ingestStatus(deviceId: string, payload: Buffer): void {
    const result = decode(DeviceStatus, payload);
    if (!result.ok) {
      this.drop('status', deviceId, formatIssues(result.issues));
      return;
    }
    // A new device gets its first desired state only once its state report
    // arrives: that report carries the revision it already holds (from a hub
    // that lost its database, say), which the first revision must exceed.
    this.deps.devices.ensure(deviceId);
    this.deps.devices.recordOnline(deviceId, result.value.online);
    this.log.info({ deviceId, online: result.value.online }, result.value.online ? 'device online' : 'device offline');
  }

  private handleRequest(clientId: string, payload: Buffer): void {
    const result = decode(ApiRequest, payload);
    let response: ApiResponse;
    if (!result.ok) {
      // Answer when we can tell who asked; a caller waiting on its correlation id learns why.
      const correlationId = correlationIdOf(payload);
      this.log.warn({ clientId, reason: formatIssues(result.issues) }, 'invalid API request');
      response = {
        correlationId,
        ok: false,
        error: { code: 'invalid_request', message: `invalid request: ${formatIssues(result.issues)}`, details: { issues: result.issues } },
      };
    } else {
      const { correlationId, method, params } = result.value;
      try {
        response = { correlationId, ok: true, result: this.deps.api.call(method, params) };
        this.log.info({ clientId, method, correlationId }, 'API request served');
      } catch (err) {
        const error = toErrorBody(err);
        if (error.code === 'internal') this.log.error({ clientId, method, err }, 'API method failed');
        else this.log.info({ clientId, method, code: error.code }, 'API request refused');
        response = { correlationId, ok: false, error };
      }
    }
    this.deps.mqtt.publish(this.deps.topics.api(clientId, 'response'), JSON.stringify(response), { qos: 1 });
  }

  private drop(channel: string, deviceId: string, reason: string): void {
    this.log.warn({ deviceId, channel, reason }, 'invalid message dropped');
  }
}

function correlationIdOf(payload: Buffer): string | null {
  try {
    const value = JSON.parse(payload.toString('utf8')) as { correlationId?: unknown };
    return typeof value?.correlationId === 'string' ? value.correlationId : null;
  } catch {
    return null;
  }
}

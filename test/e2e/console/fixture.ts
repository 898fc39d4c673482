/**
 * What the console tests stand on: an in-process hub that requires keys
 * (anonymous clients denied, so the console asks for one and roles are the
 * ones a real fleet has), and simulated devices registered with a token as an
 * operator would, each a real agent (link, store, reconciler) over an
 * in-memory container engine, optionally behind a fault proxy so a test can
 * kill its link.
 */
import { adminKey, bearer, registerDevice } from '../../support/auth.js';
import type { Cleanup } from '../../support/cleanup.js';
import { type FaultProxy, startFaultProxy } from '../../support/fault-proxy.js';
import { type HttpResult, http } from '../../support/http.js';
import { startTestHub, type TestHub } from '../../support/hub.js';
import { startFleet } from '../../support/sim/fleet.js';
import type { ImageBehaviour } from '../../support/sim/memory-runtime.js';

export interface ConsoleHub {
  hub: TestHub;
  adminKey: string;
  /** An API call with `key` (the admin key by default): what a CLI or script sees beside the page. */
  api(method: string, path: string, body?: unknown, key?: string): Promise<HttpResult>;
}

export async function startConsoleHub(cleanup: Cleanup): Promise<ConsoleHub> {
  const hub = await startTestHub({ config: { allowAnonymous: false } });
  cleanup.add('hub', () => hub.close());
  const key = adminKey(hub);
  return {
    hub,
    adminKey: key,
    api: (method, path, body, withKey = key) => http(hub.httpUrl, method, path, body, bearer(withKey)),
  };
}

export interface SimOptions {
  labels?: Record<string, string>;
  /** Connect through a fault proxy (returned) instead of straight to the hub. */
  proxied?: boolean;
  /** Seconds between MQTT pings: a dead link is noticed by the hub after 1.5 times this. */
  keepaliveSeconds?: number;
  pullDelayMs?: number;
  behaviour?: (image: string) => ImageBehaviour | undefined;
  /** Seconds between the agent's metrics samples (its default is 10). */
  metricsIntervalSeconds?: number;
}

/**
 * Registers device `{name}-0` (the fleet simulator's naming) with a token and
 * starts its agent with the secret it got; returns the id and the proxy, if any.
 */
export async function startSimDevice(
  cleanup: Cleanup,
  hub: ConsoleHub,
  name: string,
  options: SimOptions = {},
): Promise<{ id: string; proxy?: FaultProxy }> {
  const id = `${name}-0`;
  const labels = options.labels ?? {};
  const { secret, hubKey } = await registerDevice(hub.hub, id, labels);
  let proxy: FaultProxy | undefined;
  if (options.proxied) {
    proxy = await startFaultProxy({ targetPort: hub.hub.hub.ports.mqtt });
    cleanup.add(`proxy of ${id}`, () => proxy?.close());
  }
  const fleet = await startFleet({
    hubUrl: proxy?.url ?? hub.hub.mqttUrl,
    count: 1,
    idPrefix: name,
    labels: () => labels,
    ...(options.pullDelayMs !== undefined ? { pullDelayMs: options.pullDelayMs } : {}),
    ...(options.behaviour ? { behaviour: options.behaviour } : {}),
    agent: {
      secret,
      hubKey,
      keepaliveSeconds: options.keepaliveSeconds ?? 30,
      stateIntervalMs: 200,
      ...(options.metricsIntervalSeconds ? { metricsIntervalMs: options.metricsIntervalSeconds * 1000 } : {}),
    },
  });
  cleanup.add(`device ${id}`, () => fleet.close());
  return proxy ? { id, proxy } : { id };
}

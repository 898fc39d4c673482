/** Fixtures for the agent's pure planner tests: containers of one app, `shop`, as the runtime reports them, and a plan context. */
import type { HealthVerdict } from '../../agent/health/verdict.js';
import type { PlanContext } from '../../agent/reconcile/plan.js';
import type { AppRecord } from '../../agent/reconcile/records.js';
import type { ClosedWindow } from '../../agent/reconcile/window-hold.js';
import type { ManagedContainer } from '../../agent/runtime/runtime.js';
import { specHash } from '../../agent/runtime/spec-hash.js';
import type { ContainerSpec } from '../../shared/index.js';

/** A running container of `shop` made from `spec`; its id differs for every spec. */
export function container(spec: ContainerSpec, overrides: Partial<ManagedContainer> = {}): ManagedContainer {
  return {
    id: `id-${spec.name}-${specHash(spec)}`,
    dockerName: `shop_${spec.name}`,
    app: 'shop',
    container: spec.name,
    appRevision: 1,
    specHash: specHash(spec),
    image: spec.image,
    state: 'running',
    status: 'Up 1 minute',
    restartCount: 0,
    ...overrides,
  };
}

/** `shop`'s record, committed to `revision` with these containers. */
export const committedTo = (revision: number, ...specs: ContainerSpec[]): Map<string, AppRecord> =>
  new Map([
    ['shop', { committed: { revision, containers: Object.fromEntries(specs.map((s) => [s.name, { hash: specHash(s), spec: s }])) } }],
  ]);

export interface ContextOverrides {
  images?: string[];
  records?: Map<string, AppRecord>;
  health?: [string, HealthVerdict][];
  pulled?: string[];
  locks?: [string, string][];
  diskShort?: [string, string][];
  /** Apps whose update window is closed, with it (agent/reconcile/window-hold.ts). */
  windows?: [string, ClosedWindow][];
}

export function ctx(overrides: ContextOverrides = {}): PlanContext {
  return {
    imagesPresent: new Set(overrides.images ?? []),
    primaryName: (a, c) => `${a}_${c}`,
    records: overrides.records ?? new Map(),
    health: new Map(overrides.health ?? []),
    pulledImages: new Set(overrides.pulled ?? []),
    locks: new Map(overrides.locks ?? []),
    diskShort: new Map(overrides.diskShort ?? []),
    windows: new Map(overrides.windows ?? []),
  };
}

export const healthy: HealthVerdict = { status: 'healthy', reason: 'GET http://localhost/healthz answered 200' };
export const pending: HealthVerdict = { status: 'pending', reason: 'waiting for health check (3s of 60s)' };

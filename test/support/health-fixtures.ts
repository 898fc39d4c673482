/** Fixtures for the health gate's pure tests: a candidate container of `shop`, started at STARTED, and its specs. */
import type { ManagedContainer } from '../../agent/runtime/runtime.js';
import type { ContainerSpec } from '../../shared/index.js';

export const STARTED = Date.parse('2026-11-28T10:00:00Z');
export const plain: ContainerSpec = { name: 'web', image: 'reg/web:2' };
export const withHttp: ContainerSpec = { ...plain, healthcheck: { http: 'http://localhost:80/healthz' } };

/** The candidate `shop_web`, running since STARTED on the default bridge. */
export function candidate(overrides: Partial<ManagedContainer> = {}): ManagedContainer {
  return {
    id: 'c1',
    dockerName: 'shop_web',
    app: 'shop',
    container: 'web',
    appRevision: 2,
    specHash: 'h',
    image: 'reg/web:2',
    state: 'running',
    status: 'Up',
    restartCount: 0,
    startedAt: new Date(STARTED).toISOString(),
    ipAddress: '172.17.0.5',
    networkMode: 'bridge',
    ...overrides,
  };
}

/** `audit.list` (declared in shared/api/methods.ts), merged into the hub's method table. */
import type { ApiHandlersFor } from '../dispatcher/method.js';
import { sinceMs } from '../telemetry/methods.js';
import type { AuditStore } from './audit-store.js';

const DEFAULT_LIMIT = 100;

export function auditMethods({ audit, now }: { audit: AuditStore; now: () => number }): ApiHandlersFor<'audit.list'> {
  return {
    'audit.list': async (p) => ({
      items: await audit.list({ device: p.device, sinceMs: sinceMs(p.since, now()), limit: p.limit ?? DEFAULT_LIMIT }),
    }),
  };
}

/**
 * `apps.applyAll` and `apps.export`: a folder of specs applied as one unit, and the fleet's specs
 * written back out as they were applied.
 *
 * Stages: check every spec (schema, names unique in the set, secrets present) collecting every
 * problem, each at `specs[i]…` so a client maps it back to its file → one store transaction
 * (broker/store/app-sets.ts: revisions, scope, prune; a dry run is the same transaction rolled
 * back) → the answer, with the devices each app selects → unless a dry run, the rollouts of the
 * new revisions and the pruned apps, and one nudge to the desired-state pass.
 *
 * A set with any problem stores nothing: the checks finish before the store is touched, and the
 * store's own refusals (another scope, an unexpected prune set) come from inside its transaction.
 */
import type { ApiParams, AppliedApp, ApplyAllResult, AppSpec, ExportedApp, List, PrunedApp, ValidationIssue } from '../../shared/index.js';
import { validateAppSpec } from '../../shared/index.js';
import { type AppSetOutcome, PruneMismatchError, ScopeConflictError } from '../store/app-sets.js';
import type { AppStore } from '../store/apps.js';
import type { DeviceStore } from '../store/devices.js';
import type { SecretStore } from '../store/secrets.js';
import { ApiError } from './errors.js';
import type { Rollouts } from './rollouts.js';
import { matches, referencedSecrets, secretProblems } from './scheduling.js';
import { secretValues } from './secret-values.js';
import { type AppViewDevice, appViewDevice } from './views.js';

/** How many device ids an applied app lists; `count` says how many it selects in all. */
export const LISTED_DEVICE_IDS = 100;

export interface ApplySetDeps {
  apps: AppStore;
  devices: Pick<DeviceStore, 'fleetRows'>;
  secrets: Pick<SecretStore, 'get'>;
  rollouts: Pick<Rollouts, 'onNewRevision' | 'forget'>;
  desiredMayHaveChanged: () => void;
}

/** An issue of spec `index`, at the spec's own `path` ('' for the document). */
function at(index: number, issue: ValidationIssue): ValidationIssue {
  return { path: issue.path === '' ? `specs[${index}]` : `specs[${index}].${issue.path}`, message: issue.message };
}

/** The set's specs, validated, or ApiError naming every problem of every spec. */
async function checkSpecs(specs: readonly unknown[], secrets: Pick<SecretStore, 'get'>): Promise<AppSpec[]> {
  const issues: ValidationIssue[] = [];
  const valid: { index: number; spec: AppSpec }[] = [];
  const firstIndex = new Map<string, number>();
  specs.forEach((raw, index) => {
    const result = validateAppSpec(raw);
    if (!result.ok) {
      issues.push(...result.issues.map((issue) => at(index, issue)));
      return;
    }
    const earlier = firstIndex.get(result.value.name);
    if (earlier !== undefined) {
      issues.push(at(index, { path: 'name', message: `app "${result.value.name}" is already specs[${earlier}]: each app at most once` }));
      return;
    }
    firstIndex.set(result.value.name, index);
    valid.push({ index, spec: result.value });
  });
  // Malformed specs may name the secrets they would use too: their names could be anything, so only valid specs are looked up.
  const lookup = await secretValues(
    secrets,
    valid.map((v) => v.spec),
  );
  for (const { index, spec } of valid) {
    issues.push(...secretProblems(spec, lookup).map((err) => at(index, { path: err.path, message: err.message })));
  }
  if (issues.length > 0) {
    issues.sort((a, b) => specIndex(a.path) - specIndex(b.path));
    throw ApiError.invalid('invalid_spec', 'app specs', issues);
  }
  return valid.map((v) => v.spec);
}

function specIndex(path: string): number {
  return Number(/^specs\[(\d+)\]/.exec(path)?.[1] ?? 0);
}

/** The store's refusals as the API's `conflict`, naming the specs or apps in question. */
function storeRefusal(err: unknown): unknown {
  if (err instanceof ScopeConflictError) {
    return new ApiError('conflict', err.message, {
      issues: err.conflicts.map((c) => ({
        path: `specs[${c.index}].name`,
        message: `app "${c.name}" belongs to prune scope "${c.scope}", not "${err.scope}": apply it in scope "${c.scope}" (flotilla apply --prune-scope ${c.scope}), or delete it first`,
      })),
    });
  }
  if (err instanceof PruneMismatchError) {
    return new ApiError('conflict', `${err.message}: the hub's apps changed since the dry run; run it again`, {
      expected: err.expected,
      actual: err.actual,
    });
  }
  return err;
}

function devicesOf(spec: AppSpec, fleet: readonly AppViewDevice[]): { count: number; ids: string[] } {
  const ids = fleet
    .filter((device) => matches(spec.scheduling, device.id, device.labels))
    .map((device) => device.id)
    .sort();
  return { count: ids.length, ids: ids.slice(0, LISTED_DEVICE_IDS) };
}

function answer(outcome: AppSetOutcome, specs: readonly AppSpec[], fleet: readonly AppViewDevice[], source: string | null): ApplyAllResult {
  const items = outcome.items.map((item, i): AppliedApp => {
    const spec = specs[i]!;
    return {
      name: item.name,
      action: item.action,
      revision: item.revision,
      previousRevision: item.previousRevision,
      devices: devicesOf(spec, fleet),
      secrets: [...referencedSecrets(spec)].sort(),
      scope: item.scope,
      previousScope: item.previousScope,
      ...(outcome.dryRun && item.replaced ? { current: item.replaced } : {}),
    };
  });
  const pruned = outcome.pruned.map(
    (app): PrunedApp => ({
      name: app.name,
      revision: app.revision,
      scope: app.scope,
      ...(outcome.dryRun ? { current: app.spec } : {}),
    }),
  );
  return { dryRun: outcome.dryRun, source, items, pruned };
}

export async function applySet(deps: ApplySetDeps, params: ApiParams<'apps.applyAll'>): Promise<ApplyAllResult> {
  if (params.prune && params.scope === undefined) {
    throw ApiError.invalid('invalid_request', 'params for apps.applyAll', [
      { path: 'prune', message: 'needs scope: a prune deletes only the apps of one prune scope (flotilla apply --prune-scope NAME)' },
    ]);
  }
  const specs = await checkSpecs(params.specs, deps.secrets);
  let outcome: AppSetOutcome;
  try {
    outcome = await deps.apps.applySet({
      specs,
      scope: params.scope,
      source: params.source,
      prune: params.prune,
      expectPruned: params.expectPruned,
      dryRun: params.dryRun,
    });
  } catch (err) {
    throw storeRefusal(err);
  }
  const fleet = (await deps.devices.fleetRows()).map(appViewDevice);
  if (!outcome.dryRun) {
    const revised = outcome.items.filter((item) => item.action !== 'unchanged');
    for (const item of revised) await deps.rollouts.onNewRevision(item.name);
    for (const app of outcome.pruned) await deps.rollouts.forget(app.name);
    if (revised.length > 0 || outcome.pruned.length > 0) deps.desiredMayHaveChanged();
  }
  return answer(outcome, specs, fleet, params.source ?? null);
}

export async function exportApps(apps: AppStore, params: ApiParams<'apps.export'>): Promise<List<ExportedApp>> {
  const stored = await apps.list({ scope: params.scope });
  return { items: stored.map((app) => ({ name: app.name, revision: app.revision, scope: app.scope, spec: app.spec })) };
}

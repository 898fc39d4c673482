/**
 * A set of app specs applied as one unit (`apps.applyAll`). The decision is one pure function,
 * planAppSet, that both engines call inside their transaction with what they read there, so
 * SQLite and PostgreSQL decide alike; each engine then writes what the plan says.
 *
 * Invariants:
 * - All or nothing: a refused set (ScopeConflictError, PruneMismatchError) is refused by the plan,
 *   before the engine writes anything, inside the same transaction that would have written it.
 * - A spec whose content hash is the current revision's makes no revision (`unchanged`); any other
 *   is revision N+1 of its app (N its current revision, always its newest), with cause `apply` and
 *   the set's source.
 * - Scope: a set with a scope records it on every app it names. An app without a scope is adopted
 *   (no revision for that alone); an app recorded with another scope refuses the set. A set
 *   without a scope leaves every app's scope as it is.
 * - Prune deletes only apps recorded with the set's scope that the set does not name, each with its
 *   revisions. With `expectPruned`, any other prune set refuses the set.
 * - A dry run is the same transaction thrown away (DryRunRollback): it cannot answer otherwise than
 *   the apply that follows it would, given the same rows.
 */
import type { ApplyAction, AppSpec } from '../../shared/index.js';

export interface AppSetRequest {
  /** Validated specs with distinct names (the dispatcher checks both before the store sees them). */
  specs: readonly AppSpec[];
  scope?: string | undefined;
  /** Recorded on every new revision (`git:<commit>`). */
  source?: string | undefined;
  /** Delete the apps of `scope` the set does not name; needs `scope`. */
  prune?: boolean | undefined;
  /** The prune set the caller expects, in any order; the set is refused if it differs. */
  expectPruned?: readonly string[] | undefined;
  dryRun?: boolean | undefined;
}

/** An app as a set's plan reads it: its current revision. */
export interface CurrentApp {
  name: string;
  revision: number;
  specHash: string;
  spec: AppSpec;
  scope: string | null;
}

/** An app's current revision as both engines' set queries read it (`${CURRENT_APP_QUERY} WHERE …`). */
export interface CurrentAppRow {
  name: string;
  revision: number;
  scope: string | null;
  spec: string;
  spec_hash: string;
}

export const CURRENT_APP_QUERY = `SELECT a.name, a.revision, a.scope, r.spec, r.spec_hash
  FROM apps a JOIN app_revisions r ON r.app = a.name AND r.revision = a.revision`;

export function currentAppFromRow(row: CurrentAppRow): CurrentApp {
  return { name: row.name, revision: row.revision, scope: row.scope, specHash: row.spec_hash, spec: JSON.parse(row.spec) as AppSpec };
}

/** What the engine writes for one app of the set. */
export type SetWrite =
  /** Revision N+1, and the app row pointing at it with the plan's scope. */
  | 'revision'
  /** The scope alone: an unchanged app adopted into the set's scope. */
  | 'scope'
  | 'none';

export interface PlannedApp {
  spec: AppSpec;
  specHash: string;
  action: ApplyAction;
  write: SetWrite;
  /** The app's current revision once the set is applied. */
  revision: number;
  /** The app's scope once the set is applied. */
  scope: string | null;
  current: CurrentApp | undefined;
}

export interface AppSetPlan {
  apps: PlannedApp[];
  /** Sorted by name. */
  prune: PrunedStoredApp[];
}

export interface PrunedStoredApp extends CurrentApp {
  scope: string;
}

/** One app of the set as applied, in the request's order. */
export interface AppSetItem {
  name: string;
  action: ApplyAction;
  revision: number;
  previousRevision: number | null;
  scope: string | null;
  previousScope: string | null;
  /** The spec the new revision replaced; only for a `configured` app. */
  replaced?: AppSpec;
}

export interface AppSetOutcome {
  dryRun: boolean;
  items: AppSetItem[];
  /** Sorted by name; each with its spec as it was when deleted. */
  pruned: PrunedStoredApp[];
}

/** Apps of the set recorded with another prune scope than the set's: the set is refused, nothing stored. */
export class ScopeConflictError extends Error {
  constructor(
    readonly scope: string,
    /** `index` is the spec's place in the request. */
    readonly conflicts: readonly { index: number; name: string; scope: string }[],
  ) {
    super(conflicts.map((c) => `app "${c.name}" belongs to prune scope "${c.scope}", not "${scope}"`).join('; '));
    this.name = 'ScopeConflictError';
  }
}

/** The prune set is not the one the caller expected (the fleet changed since its dry run): nothing stored. */
export class PruneMismatchError extends Error {
  constructor(
    readonly expected: readonly string[],
    readonly actual: readonly string[],
  ) {
    super(`prune would delete [${actual.join(', ')}], not the expected [${expected.join(', ')}]`);
    this.name = 'PruneMismatchError';
  }
}

/** Thrown inside a dry run's transaction so that the engine rolls it back; the engine catches it and returns its outcome. */
export class DryRunRollback extends Error {
  constructor(readonly outcome: AppSetOutcome) {
    super('dry run: rolled back');
    this.name = 'DryRunRollback';
  }
}

const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/**
 * The set's plan from the rows read inside its transaction: `current` holds every app of the set
 * that exists, `scoped` every app recorded with the set's scope (read only when pruning).
 * `hashes[i]` is the content hash of `request.specs[i]`.
 */
export function planAppSet(
  request: AppSetRequest,
  hashes: readonly string[],
  current: ReadonlyMap<string, CurrentApp>,
  scoped: readonly CurrentApp[],
): AppSetPlan {
  const scope = request.scope ?? null;
  const conflicts: { index: number; name: string; scope: string }[] = [];
  const apps = request.specs.map((spec, index): PlannedApp => {
    const specHash = hashes[index]!;
    const now = current.get(spec.name);
    if (scope !== null && now?.scope != null && now.scope !== scope) conflicts.push({ index, name: spec.name, scope: now.scope });
    const nextScope = scope ?? now?.scope ?? null;
    if (!now) return { spec, specHash, action: 'created', write: 'revision', revision: 1, scope: nextScope, current: now };
    if (now.specHash !== specHash) {
      return { spec, specHash, action: 'configured', write: 'revision', revision: now.revision + 1, scope: nextScope, current: now };
    }
    const write = nextScope !== now.scope ? 'scope' : 'none';
    return { spec, specHash, action: 'unchanged', write, revision: now.revision, scope: nextScope, current: now };
  });
  if (scope !== null && conflicts.length > 0) throw new ScopeConflictError(scope, conflicts);

  const named = new Set(request.specs.map((spec) => spec.name));
  const prune =
    request.prune && scope !== null
      ? scoped
          .filter((app) => app.scope === scope && !named.has(app.name))
          .map((app) => ({ ...app, scope }))
          .sort(byName)
      : [];
  if (request.expectPruned !== undefined) {
    const expected = [...new Set(request.expectPruned)].sort();
    const actual = prune.map((app) => app.name);
    if (expected.length !== actual.length || expected.some((name, i) => name !== actual[i])) throw new PruneMismatchError(expected, actual);
  }
  return { apps, prune };
}

/** What a plan, once written, did: the answer of the set. */
export function setOutcome(plan: AppSetPlan, dryRun: boolean): AppSetOutcome {
  return {
    dryRun,
    items: plan.apps.map((app) => ({
      name: app.spec.name,
      action: app.action,
      revision: app.revision,
      previousRevision: app.current?.revision ?? null,
      scope: app.scope,
      previousScope: app.current?.scope ?? null,
      ...(app.action === 'configured' && app.current ? { replaced: app.current.spec } : {}),
    })),
    pruned: plan.prune,
  };
}

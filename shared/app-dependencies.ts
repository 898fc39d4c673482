/**
 * The start order of an app's containers (`dependsOn`), checked where a spec is validated and
 * followed by the agent. The order is a topological one that keeps the spec's own order
 * wherever dependencies leave a choice, so an app without `dependsOn` starts as it always has:
 * in the order its containers are written.
 */
import type { ContainerSpec, DependencyCondition } from './schemas/spec.js';
import type { ValidationIssue } from './validate.js';

type Dependent = Pick<ContainerSpec, 'name' | 'dependsOn' | 'healthcheck' | 'restartPolicy'>;

/** What a container waits for before it starts: each dependency by name, with its condition. */
export function dependenciesOf(container: Pick<ContainerSpec, 'dependsOn'>): [string, DependencyCondition][] {
  return Object.entries(container.dependsOn ?? {});
}

/**
 * Every problem with the containers' `dependsOn`, at `spec.containers[i].dependsOn.<name>`:
 * a name that is not a container of the app, a `healthy` dependency without a healthcheck, a
 * `completed` one that Docker would restart, and each cycle, named in full (`a → b → a`).
 */
export function dependencyIssues(containers: readonly Dependent[], initNames: ReadonlySet<string> = new Set()): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const byName = new Map(containers.map((c) => [c.name, c]));
  containers.forEach((container, i) => {
    for (const [name, condition] of dependenciesOf(container)) {
      const at = `spec.containers[${i}].dependsOn.${name}`;
      const dependency = byName.get(name);
      if (!dependency) {
        issues.push({
          path: at,
          message: initNames.has(name)
            ? `"${name}" is an init container: init containers always complete before the app's containers start`
            : `no container "${name}" in this app`,
        });
      } else if (condition === 'healthy' && !dependency.healthcheck) {
        issues.push({ path: at, message: `"${name}" has no healthcheck: give it one, or depend on it as started` });
      } else if (condition === 'completed' && !['no', 'on-failure'].includes(dependency.restartPolicy?.name ?? 'unless-stopped')) {
        issues.push({
          path: at,
          message: `"${name}" is restarted when it exits, so it never stays completed: give it restartPolicy "no" or "on-failure"`,
        });
      }
    }
  });
  for (const cycle of cyclesOf(containers)) {
    const first = containers.findIndex((c) => c.name === cycle[0]);
    issues.push({ path: `spec.containers[${first}].dependsOn`, message: `dependsOn cycle: ${[...cycle, cycle[0]].join(' → ')}` });
  }
  return issues;
}

/**
 * The containers in the order they start: each after everything it depends on, otherwise in
 * spec order. Dependencies on names that are not containers are ignored (validation refuses them),
 * and a cycle (also refused) leaves its members in spec order at the end.
 */
export function startOrder<T extends Dependent>(containers: readonly T[]): T[] {
  const names = new Set(containers.map((c) => c.name));
  const started = new Set<string>();
  const order: T[] = [];
  let progressed = true;
  while (order.length < containers.length && progressed) {
    progressed = false;
    for (const container of containers) {
      if (started.has(container.name)) continue;
      const waiting = dependenciesOf(container).some(([name]) => names.has(name) && !started.has(name));
      if (waiting) continue;
      started.add(container.name);
      order.push(container);
      progressed = true;
      break; // back to the top: the earliest container in spec order that can start goes next
    }
  }
  return [...order, ...containers.filter((c) => !started.has(c.name))];
}

/** Each cycle once, as the names along it starting from its earliest container in spec order. */
function cyclesOf(containers: readonly Dependent[]): string[][] {
  const index = new Map(containers.map((c, i) => [c.name, i]));
  const edges = new Map(
    containers.map((c) => [
      c.name,
      dependenciesOf(c)
        .map(([name]) => name)
        .filter((name) => index.has(name)),
    ]),
  );
  const cycles: string[][] = [];
  const seen = new Set<string>();
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (name: string): void => {
    state.set(name, 'open');
    path.push(name);
    for (const next of edges.get(name) ?? []) {
      if (state.get(next) === 'open') {
        const cycle = path.slice(path.indexOf(next));
        const start = cycle.reduce((a, b) => (index.get(a)! <= index.get(b)! ? a : b));
        const rotated = [...cycle.slice(cycle.indexOf(start)), ...cycle.slice(0, cycle.indexOf(start))];
        const key = rotated.join('\0');
        if (!seen.has(key)) {
          seen.add(key);
          cycles.push(rotated);
        }
      } else if (state.get(next) === undefined) {
        visit(next);
      }
    }
    path.pop();
    state.set(name, 'done');
  };
  for (const container of containers) if (state.get(container.name) === undefined) visit(container.name);
  return cycles;
}

/** An app's start order and the apply-time checks of `dependsOn` and `initContainers`. */
import { describe, expect, it } from 'vitest';
import { dependencyIssues, startOrder } from '../../shared/app-dependencies.js';
import { validateAppSpec } from '../../shared/app-spec.js';
import type { ContainerSpec } from '../../shared/schemas/spec.js';

const c = (name: string, fields: Partial<ContainerSpec> = {}): ContainerSpec => ({ name, image: `${name}:1`, ...fields });
const app = (containers: ContainerSpec[], extra: Record<string, unknown> = {}) => ({
  name: 'shop',
  scheduling: { selectors: {} },
  spec: { containers, ...extra },
});

describe('startOrder', () => {
  it('keeps the spec order where nothing depends on anything', () => {
    expect(startOrder([c('a'), c('b'), c('c')]).map((x) => x.name)).toEqual(['a', 'b', 'c']);
  });

  it('starts each container after its dependencies, and otherwise in spec order', () => {
    const containers = [
      c('web', { dependsOn: { db: 'healthy', cache: 'started' } }),
      c('worker', { dependsOn: { db: 'started' } }),
      c('cache'),
      c('db', { healthcheck: { tcp: 'localhost:5432' } }),
      c('metrics'),
    ];
    expect(startOrder(containers).map((x) => x.name)).toEqual(['cache', 'db', 'web', 'worker', 'metrics']);
  });

  it('puts the members of a cycle last, in spec order, rather than dropping them', () => {
    const containers = [c('a', { dependsOn: { b: 'started' } }), c('b', { dependsOn: { a: 'started' } }), c('c')];
    expect(startOrder(containers).map((x) => x.name)).toEqual(['c', 'a', 'b']);
  });
});

describe('dependencyIssues', () => {
  it('names each cycle once, in full, from its first container in spec order', () => {
    const issues = dependencyIssues([
      c('web', { dependsOn: { api: 'started' } }),
      c('api', { dependsOn: { db: 'started' } }),
      c('db', { dependsOn: { web: 'started' } }),
      c('self', { dependsOn: { self: 'started' } }),
    ]);
    expect(issues).toEqual([
      { path: 'spec.containers[0].dependsOn', message: 'dependsOn cycle: web → api → db → web' },
      { path: 'spec.containers[3].dependsOn', message: 'dependsOn cycle: self → self' },
    ]);
  });

  it('refuses an unknown name, an init container, healthy without a healthcheck, completed on a restarted container', () => {
    const issues = dependencyIssues(
      [
        c('web', { dependsOn: { nope: 'started', migrate: 'completed', db: 'healthy', seed: 'completed' } }),
        c('db'),
        c('seed', { restartPolicy: { name: 'always' } }),
        c('ok', { dependsOn: { once: 'completed' } }),
        c('once', { restartPolicy: { name: 'no' } }),
      ],
      new Set(['migrate']),
    );
    expect(issues.map((i) => `${i.path}: ${i.message}`)).toEqual([
      'spec.containers[0].dependsOn.nope: no container "nope" in this app',
      'spec.containers[0].dependsOn.migrate: "migrate" is an init container: init containers always complete before the app\'s containers start',
      'spec.containers[0].dependsOn.db: "db" has no healthcheck: give it one, or depend on it as started',
      'spec.containers[0].dependsOn.seed: "seed" is restarted when it exits, so it never stays completed: give it restartPolicy "no" or "on-failure"',
    ]);
  });
});

describe('validateAppSpec with dependsOn and initContainers', () => {
  it('accepts a database, a migration as an init container and a web server waiting for the database', () => {
    const result = validateAppSpec(
      app([c('db', { healthcheck: { exec: ['pg_isready'] } }), c('web', { dependsOn: { db: 'healthy' }, ports: ['8080:80'] })], {
        initContainers: [c('migrate', { command: ['migrate', 'up'] })],
        initPolicy: 'revision',
      }),
    );
    expect(result).toMatchObject({ ok: true });
  });

  it('refuses a cycle, an unknown condition, an init container with ports, and a name used twice', () => {
    const result = validateAppSpec(
      app([c('a', { dependsOn: { b: 'started' } }), c('b', { dependsOn: { a: 'started' } })], {
        initContainers: [c('a')],
      }),
    );
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.issues).toEqual([
      { path: 'spec.initContainers[0].name', message: '"a" is also the name of a container: names are one per app' },
      { path: 'spec.containers[0].dependsOn', message: 'dependsOn cycle: a → b → a' },
    ]);
    const schema = validateAppSpec(
      app([c('a', { dependsOn: { b: 'ready' as 'started' } }), c('b')], { initContainers: [c('m', { ports: ['80'] })] }),
    );
    expect(schema.ok).toBe(false);
    if (schema.ok) return;
    expect(schema.issues.map((i) => i.path)).toEqual(
      expect.arrayContaining(['spec.containers[0].dependsOn.b', 'spec.initContainers[0].ports']),
    );
  });
});

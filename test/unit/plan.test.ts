import { describe, expect, it } from 'vitest';
import { plan } from '../../agent/reconcile/plan.js';
import type { ManagedContainer } from '../../agent/runtime/runtime.js';
import { specHash } from '../../agent/runtime/spec-hash.js';
import type { ContainerSpec, DesiredApp } from '../../shared/index.js';

const web: ContainerSpec = { name: 'web', image: 'reg.local/web:1', ports: ['8080:80'] };
const app = (containers: ContainerSpec[] = [web], revision = 1): DesiredApp => ({ name: 'shop', revision, containers });

function running(spec: ContainerSpec, overrides: Partial<ManagedContainer> = {}): ManagedContainer {
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

const present = (...images: string[]) => ({ imagesPresent: new Set(images) });

describe('plan', () => {
  it('changes nothing while no desired state is known, even with containers running', () => {
    expect(plan([running(web)], undefined, present())).toEqual([]);
  });

  it('pulls a missing image before creating anything', () => {
    expect(plan([], [app()], present())).toEqual([
      { action: 'pull', app: 'shop', container: 'web', image: 'reg.local/web:1', reason: 'image not present' },
    ]);
  });

  it('passes registry credentials to the pull', () => {
    const withAuth = { ...web, auth: { username: 'ci', password: 's3cret' } };
    const [step] = plan([], [app([withAuth])], present());
    expect(step).toMatchObject({ action: 'pull', auth: { username: 'ci', password: 's3cret' } });
  });

  it('creates the container once its image is present', () => {
    expect(plan([], [app()], present(web.image))).toEqual([
      { action: 'create', app: 'shop', container: 'web', appRevision: 1, specHash: specHash(web), spec: web, reason: 'not running' },
    ]);
  });

  it('starts a container that was created but never started', () => {
    const created = running(web, { state: 'created' });
    expect(plan([created], [app()], present(web.image))).toEqual([
      { action: 'start', app: 'shop', container: 'web', id: created.id, reason: 'created but not started' },
    ]);
  });

  it('keeps a running container whose spec hash matches: adopting it after an agent restart', () => {
    expect(plan([running(web)], [app()], present(web.image))).toEqual([]);
  });

  it('leaves a crashed container to its restart policy instead of restarting it itself', () => {
    expect(plan([running(web, { state: 'exited', exitCode: 1 })], [app()], present(web.image))).toEqual([]);
  });

  describe('on a spec change (download-then-kill)', () => {
    const v2: ContainerSpec = { ...web, image: 'reg.local/web:2' };
    const old = running(web);

    it('pulls the new image first while the old container keeps running', () => {
      const steps = plan([old], [app([v2], 2)], present(web.image));
      expect(steps).toEqual([
        {
          action: 'pull',
          app: 'shop',
          container: 'web',
          image: 'reg.local/web:2',
          reason: 'spec changed: pulling reg.local/web:2 before replacing the running container',
        },
      ]);
    });

    it('then stops the old container', () => {
      expect(plan([old], [app([v2], 2)], present(web.image, v2.image))).toEqual([
        { action: 'stop', app: 'shop', container: 'web', id: old.id, reason: 'spec changed: replacing container' },
      ]);
    });

    it('then removes it once stopped', () => {
      const stopped = { ...old, state: 'exited' };
      expect(plan([stopped], [app([v2], 2)], present(v2.image))).toEqual([
        { action: 'remove', app: 'shop', container: 'web', id: old.id, reason: 'spec changed: replacing container' },
      ]);
    });

    it('then creates the new one', () => {
      expect(plan([], [app([v2], 2)], present(v2.image))).toMatchObject([{ action: 'create', appRevision: 2, specHash: specHash(v2) }]);
    });

    it('recreates on an env change even with the same image', () => {
      const envChanged = { ...web, env: [{ name: 'LOG_LEVEL', value: 'debug' }] };
      expect(plan([old], [app([envChanged], 2)], present(web.image))).toMatchObject([{ action: 'stop', id: old.id }]);
    });
  });

  it('stops, then removes, containers of apps no longer desired', () => {
    const orphan = running(web, { app: 'legacy', id: 'orphan-1' });
    expect(plan([orphan], [], present())).toEqual([
      { action: 'stop', app: 'legacy', container: 'web', id: 'orphan-1', reason: 'app no longer desired on this device' },
    ]);
    expect(plan([{ ...orphan, state: 'exited' }], [], present())).toEqual([
      { action: 'remove', app: 'legacy', container: 'web', id: 'orphan-1', reason: 'app no longer desired on this device' },
    ]);
  });

  it('removes a container dropped from an app that is still desired', () => {
    const sidecar: ContainerSpec = { name: 'sidecar', image: 'reg.local/side:1' };
    const steps = plan([running(web), running(sidecar)], [app([web])], present(web.image));
    expect(steps).toEqual([
      { action: 'stop', app: 'shop', container: 'sidecar', id: running(sidecar).id, reason: 'container removed from the app spec' },
    ]);
  });

  it('removes duplicates of the same spec, keeping the running one', () => {
    const keep = running(web, { id: 'keep' });
    const dup = running(web, { id: 'dup', state: 'exited' });
    expect(plan([dup, keep], [app()], present(web.image))).toEqual([
      { action: 'remove', app: 'shop', container: 'web', id: 'dup', reason: 'duplicate of a container with the same spec' },
    ]);
  });

  it('plans every container of every app in one batch', () => {
    const db: ContainerSpec = { name: 'db', image: 'reg.local/db:1' };
    const steps = plan([], [app([web, db]), { name: 'other', revision: 3, containers: [db] }], present(db.image));
    expect(steps.map((s) => `${s.action} ${s.app}/${s.container}`)).toEqual(['pull shop/web', 'create shop/db', 'create other/db']);
  });
});

/**
 * `apps.revision`: one stored revision with its whole spec, which the web
 * console diffs against another. Against a real hub (HTTP API, SQLite file,
 * credentials required) so the viewer role and the query-string revision are
 * what a browser meets.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AppRevision } from '../../shared/index.js';
import { adminKey, bearer, createAccount } from '../support/auth.js';
import { Cleanup } from '../support/cleanup.js';
import { appSpec } from '../support/fixtures.js';
import { http } from '../support/http.js';
import { startTestHub, type TestHub } from '../support/hub.js';

describe('apps.revision', () => {
  const cleanup = new Cleanup();
  let hub: TestHub;

  beforeEach(async () => {
    hub = cleanup.add('hub', () => hub.close(), await startTestHub({ config: { allowAnonymous: false } }));
  });
  afterEach(() => cleanup.run());

  const api = (method: string, path: string, key: string, body?: unknown) => http(hub.httpUrl, method, path, body, bearer(key));

  it("answers an older revision's spec to a viewer, marked not current, with how the newest one came to be", async () => {
    const admin = adminKey(hub);
    const first = appSpec('web', { site: 'roof' }, 'registry.local/web:1.0');
    const second = appSpec('web', { site: 'roof' }, 'registry.local/web:2.0');
    expect((await api('POST', '/api/v1/apps', admin, first)).status).toBe(200);
    expect((await api('POST', '/api/v1/apps', admin, second)).status).toBe(200);
    expect((await api('POST', '/api/v1/apps/web/rollback', admin, { toRevision: 1 })).body).toMatchObject({ revision: 3 });

    const viewer = await createAccount(hub, 'grafana', 'viewer');
    const old = await api('GET', '/api/v1/apps/web/spec?revision=2', viewer);
    expect(old.status, JSON.stringify(old.body)).toBe(200);
    const body = old.body as AppRevision;
    expect(body).toMatchObject({ name: 'web', revision: 2, current: false, cause: 'apply' });
    expect(body.spec.spec.containers[0]?.image).toBe('registry.local/web:2.0');
    expect(Date.parse(body.createdAt)).not.toBeNaN();

    const newest = await api('GET', '/api/v1/apps/web/spec?revision=3', viewer);
    expect(newest.body).toMatchObject({ revision: 3, current: true, cause: 'rollback to 1' });
    expect((newest.body as AppRevision).spec.spec.containers[0]?.image).toBe('registry.local/web:1.0');
  });

  it('answers 404 for an unknown revision or app and 400 for a revision that is not a positive integer', async () => {
    const admin = adminKey(hub);
    expect((await api('POST', '/api/v1/apps', admin, appSpec('web'))).status).toBe(200);

    const missing = await api('GET', '/api/v1/apps/web/spec?revision=9', admin);
    expect(missing.status).toBe(404);
    expect(missing.body.error).toMatchObject({ code: 'not_found', message: 'app "web" has no revision 9' });
    expect((await api('GET', '/api/v1/apps/ghost/spec?revision=1', admin)).status).toBe(404);

    for (const bad of ['0', 'two', '']) {
      const res = await api('GET', `/api/v1/apps/web/spec?revision=${bad}`, admin);
      expect(res.status, bad).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
    }
    expect((await api('GET', '/api/v1/apps/web/spec', admin)).status).toBe(400);
  });
});

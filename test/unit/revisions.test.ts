/** The pure parts of app revisions: the history view the hub builds, and how the CLI prints it and a rollback. */
import { describe, expect, it } from 'vitest';
import { appHistory } from '../../broker/dispatcher/views.js';
import type { StoredRevision } from '../../broker/store/apps.js';
import { parseRevision, rollbackMessage } from '../../cli/commands/rollback.js';
import { historyTable } from '../../cli/commands/rollout.js';
import { type AppSpec, validateAppSpec } from '../../shared/index.js';
import { appSpec } from '../support/fixtures.js';

const NOW = Date.parse('2026-06-01T12:00:00.000Z');
const ago = (seconds: number) => new Date(NOW - seconds * 1000).toISOString();

function spec(...images: string[]): AppSpec {
  const base = appSpec('web');
  const result = validateAppSpec({ ...base, spec: { containers: images.map((image, i) => ({ name: `c${i}`, image })) } });
  if (!result.ok) throw new Error(JSON.stringify(result.issues));
  return result.value;
}

const stored = (revision: number, cause: string | null, createdAt: string, ...images: string[]): StoredRevision => ({
  revision,
  spec: spec(...images),
  specHash: `hash-${revision}`,
  createdAt,
  cause,
  source: null,
});

describe('appHistory', () => {
  it('keeps the stored order, lists each container image, marks the current revision, and omits an unrecorded cause', () => {
    const history = appHistory('web', 3, [
      stored(3, 'rollback to 1', ago(10), 'web:1', 'sidecar:1'),
      stored(2, 'apply', ago(60), 'web:2', 'sidecar:1'),
      stored(1, null, ago(3600), 'web:1', 'sidecar:1'),
    ]);
    expect(history).toEqual({
      name: 'web',
      current: 3,
      items: [
        { revision: 3, createdAt: ago(10), specHash: 'hash-3', images: ['web:1', 'sidecar:1'], current: true, cause: 'rollback to 1' },
        { revision: 2, createdAt: ago(60), specHash: 'hash-2', images: ['web:2', 'sidecar:1'], current: false, cause: 'apply' },
        { revision: 1, createdAt: ago(3600), specHash: 'hash-1', images: ['web:1', 'sidecar:1'], current: false },
      ],
    });
    expect('cause' in history.items[2]!).toBe(false);
  });
});

describe('historyTable', () => {
  it('marks the current revision with *, shows ages, joins images, the source, and <none> for an unrecorded cause or source', () => {
    const history = appHistory('web', 3, [
      stored(3, 'rollback to 1', ago(10), 'web:1', 'sidecar:1'),
      { ...stored(2, 'apply', ago(120), 'web:2'), source: 'git:3f9c2e1' },
      stored(1, null, ago(2 * 86400), 'web:1'),
    ]);
    expect(historyTable(history, NOW)).toBe(
      [
        'REVISION   CREATED   IMAGES            CAUSE           SOURCE',
        '3*         10s       web:1,sidecar:1   rollback to 1   <none>',
        '2          2m        web:2             apply           git:3f9c2e1',
        '1          2d        web:1             <none>          <none>',
        '',
      ].join('\n'),
    );
  });
});

describe('rollbackMessage', () => {
  it('names the target and the new revision, or says nothing changed', () => {
    expect(rollbackMessage({ name: 'web', revision: 4, changed: true, rolledBackTo: 2 })).toBe(
      'app/web rolled back to revision 2 (now revision 4)\n',
    );
    expect(rollbackMessage({ name: 'web', revision: 5, changed: false, rolledBackTo: 1 })).toBe(
      'app/web unchanged (revision 5 is already the spec of revision 1)\n',
    );
  });
});

describe('parseRevision', () => {
  it('accepts 1, 2, 3… and refuses anything else', () => {
    expect(parseRevision('1')).toBe(1);
    expect(parseRevision('42')).toBe(42);
    for (const bad of ['0', '-3', '01', '1.0', '1e3', 'latest', '', '99999999999999999999']) {
      expect(() => parseRevision(bad), bad).toThrow('must be a revision number');
    }
  });
});

/**
 * The admin forms' checks (broker/console/web/admin/validate.ts) agree with
 * what the hub accepts: what they pass, the hub's schema passes, and what
 * they stop is named in words an operator can act on.
 */
import { describe, expect, it } from 'vitest';
import {
  checkExpiryHours,
  checkLabels,
  checkName,
  checkPositiveInteger,
  checkSecretValue,
} from '../../broker/console/web/admin/validate.js';
import { MAX_SECRET_BYTES, MAX_TOKEN_EXPIRES_SECONDS } from '../../shared/api/methods.js';

describe('admin form checks', () => {
  it('takes names as DNS labels, trimmed', () => {
    expect(checkName('  db-pass ')).toEqual({ ok: true, value: 'db-pass' });
    for (const bad of ['', 'Db', 'db_pass', '-db', 'db-', 'a'.repeat(64)]) expect(checkName(bad).ok, bad).toBe(false);
    expect(checkName('a'.repeat(63)).ok).toBe(true);
  });

  it('reads labels as comma-separated key=value, empty text being none', () => {
    expect(checkLabels('')).toEqual({ ok: true, value: {} });
    expect(checkLabels(' site=roof , example.com/tier=edge, empty= ')).toEqual({
      ok: true,
      value: { site: 'roof', 'example.com/tier': 'edge', empty: '' },
    });
    expect(checkLabels('site')).toEqual({ ok: false, error: '"site" is not key=value.' });
    expect(checkLabels('site=roof, site=lab')).toEqual({ ok: false, error: '"site" is given twice.' });
    expect(checkLabels('bad key=x').ok).toBe(false);
    expect(checkLabels('site=has space').ok).toBe(false);
  });

  it('takes whole positive numbers up to the bound', () => {
    expect(checkPositiveInteger('3', 10)).toEqual({ ok: true, value: 3 });
    for (const bad of ['', '0', '-1', '1.5', 'x']) expect(checkPositiveInteger(bad, 10).ok, bad).toBe(false);
    expect(checkPositiveInteger('11', 10)).toEqual({ ok: false, error: 'At most 10.' });
  });

  it('turns hours into whole seconds within what tokens.create accepts', () => {
    expect(checkExpiryHours('1.5')).toEqual({ ok: true, value: 5400 });
    expect(checkExpiryHours(String(MAX_TOKEN_EXPIRES_SECONDS / 3600))).toEqual({ ok: true, value: MAX_TOKEN_EXPIRES_SECONDS });
    for (const bad of ['', '0', '-2', 'soon', '0.0001']) expect(checkExpiryHours(bad).ok, bad).toBe(false);
    expect(checkExpiryHours(String(MAX_TOKEN_EXPIRES_SECONDS / 3600 + 1)).ok).toBe(false);
  });

  it('bounds a secret by its UTF-8 bytes, as the hub does', () => {
    expect(checkSecretValue('s3cret')).toEqual({ ok: true, value: 's3cret' });
    expect(checkSecretValue('').ok).toBe(false);
    expect(checkSecretValue('x'.repeat(MAX_SECRET_BYTES)).ok).toBe(true);
    // Two bytes each: half as many characters fill the bound.
    expect(checkSecretValue('é'.repeat(MAX_SECRET_BYTES / 2 + 1)).ok).toBe(false);
  });
});

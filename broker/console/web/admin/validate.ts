/**
 * Checks of the admin forms before anything is sent, with the same patterns
 * and bounds the hub applies (shared/ids.ts, shared/api/methods.ts), so a
 * mistake is named at its field instead of coming back as a 400. The hub
 * checks again: these only save a round trip.
 */
import { MAX_SECRET_BYTES, MAX_TOKEN_EXPIRES_SECONDS } from '../../../../shared/api/methods.js';
import { LABEL_KEY_PATTERN, LABEL_VALUE_PATTERN, NAME_PATTERN } from '../../../../shared/ids.js';

export type Checked<T> = { ok: true; value: T } | { ok: false; error: string };

const nameRe = new RegExp(NAME_PATTERN);
const keyRe = new RegExp(LABEL_KEY_PATTERN);
const valueRe = new RegExp(LABEL_VALUE_PATTERN);

/** The most devices one registration token may admit (tokens.create's `maxUses` bound). */
export const MAX_TOKEN_USES = 1_000_000;

/** A service account's or a secret's name: a DNS label. */
export function checkName(text: string): Checked<string> {
  const name = text.trim();
  if (name === '') return { ok: false, error: 'A name is required.' };
  if (!nameRe.test(name)) {
    return {
      ok: false,
      error: 'Use up to 63 lower-case letters, digits and "-", starting and ending with a letter or digit.',
    };
  }
  return { ok: true, value: name };
}

/** `site=roof, tier=edge` → `{site: 'roof', tier: 'edge'}`; empty text is no labels. */
export function checkLabels(text: string): Checked<Record<string, string>> {
  const labels: Record<string, string> = {};
  const items = text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
  for (const item of items) {
    const at = item.indexOf('=');
    if (at < 0) return { ok: false, error: `"${item}" is not key=value.` };
    const key = item.slice(0, at).trim();
    const value = item.slice(at + 1).trim();
    if (!keyRe.test(key)) return { ok: false, error: `"${key}" is not a label key: [prefix/]name of letters, digits, "-", "_", ".".` };
    if (!valueRe.test(value)) {
      return { ok: false, error: `"${value}" is not a label value: up to 63 letters, digits, "-", "_", ".".` };
    }
    if (Object.hasOwn(labels, key)) return { ok: false, error: `"${key}" is given twice.` };
    labels[key] = value;
  }
  return { ok: true, value: labels };
}

/** A whole number from 1 to `max`. */
export function checkPositiveInteger(text: string, max: number): Checked<number> {
  const trimmed = text.trim();
  const value = Number(trimmed);
  if (trimmed === '' || !Number.isInteger(value) || value < 1) return { ok: false, error: 'Enter a whole number, 1 or more.' };
  if (value > max) return { ok: false, error: `At most ${max.toLocaleString('en')}.` };
  return { ok: true, value };
}

/** Hours (fractions allowed) → whole seconds, within what tokens.create accepts. */
export function checkExpiryHours(text: string): Checked<number> {
  const trimmed = text.trim();
  const hours = Number(trimmed);
  if (trimmed === '' || !Number.isFinite(hours) || hours <= 0) return { ok: false, error: 'Enter a number of hours above 0.' };
  const seconds = Math.round(hours * 3600);
  if (seconds < 1) return { ok: false, error: 'At least one second.' };
  if (seconds > MAX_TOKEN_EXPIRES_SECONDS) return { ok: false, error: `At most ${MAX_TOKEN_EXPIRES_SECONDS / 3600} hours (ten years).` };
  return { ok: true, value: seconds };
}

/** A secret's value as text: not empty, within the hub's size bound in UTF-8 bytes. */
export function checkSecretValue(text: string): Checked<string> {
  if (text === '') return { ok: false, error: 'A value is required.' };
  const bytes = new TextEncoder().encode(text).length;
  if (bytes > MAX_SECRET_BYTES)
    return { ok: false, error: `At most ${MAX_SECRET_BYTES / 1024} KiB; this is ${Math.ceil(bytes / 1024)} KiB.` };
  return { ok: true, value: text };
}

/**
 * The label forms' two inputs (the fleet's bulk edit, a device's own labels) read before anything is sent: `Set labels`
 * as `k=v, k2=v2` and `Remove labels` as `k, k2`, each key and value checked
 * against what a label can be (shared/ids.ts), so one typo refuses the whole
 * edit instead of labelling half a fleet.
 */
import { LABEL_KEY_PATTERN, LABEL_VALUE_PATTERN } from '../../../shared/ids.js';

const keyRe = new RegExp(LABEL_KEY_PATTERN);
const valueRe = new RegExp(LABEL_VALUE_PATTERN);

export interface LabelEdit {
  set: Record<string, string>;
  remove: string[];
}

export type LabelEditResult = { ok: true; edit: LabelEdit } | { ok: false; setError?: string; removeError?: string };

function items(text: string): string[] {
  return text
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}

export function parseLabelEdit(setText: string, removeText: string): LabelEditResult {
  const set: Record<string, string> = {};
  let setError: string | undefined;
  for (const item of items(setText)) {
    const equals = item.indexOf('=');
    const key = equals === -1 ? item : item.slice(0, equals).trim();
    const value = equals === -1 ? '' : item.slice(equals + 1).trim();
    if (equals === -1) setError ??= `"${item}" is not key=value`;
    else if (!keyRe.test(key)) setError ??= `invalid label key "${key}"`;
    else if (!valueRe.test(value)) setError ??= `invalid label value "${value}" for "${key}"`;
    else if (Object.hasOwn(set, key) && set[key] !== value) setError ??= `"${key}" is set twice`;
    else set[key] = value;
  }
  const remove = [...new Set(items(removeText))];
  let removeError: string | undefined;
  const badKey = remove.find((key) => !keyRe.test(key));
  if (badKey !== undefined) removeError = `invalid label key "${badKey}"`;
  else if (remove.some((key) => Object.hasOwn(set, key))) {
    removeError = `"${remove.find((key) => Object.hasOwn(set, key))}" is both set and removed`;
  }
  if (!setError && !removeError && Object.keys(set).length === 0 && remove.length === 0) {
    setError = 'nothing to change: set or remove at least one label';
  }
  if (setError || removeError) return { ok: false, ...(setError ? { setError } : {}), ...(removeError ? { removeError } : {}) };
  return { ok: true, edit: { set, remove } };
}

/**
 * What `flotilla diff` prints for the hub's dry run of a set, one block per
 * app in the set's order, then the apps a prune would delete:
 *
 *   app/web changed (revision 4 → 5)      and a unified diff of the specs as YAML
 *   app/new created                        and the whole spec as `+` lines
 *   app/x unchanged                        one line
 *   app/old deleted                        and its spec as `-` lines (with --prune)
 *
 * The diff runs from the hub's current spec to the file's, both written by
 * specYaml, the hub's with its keys in the file's order, so only what the file
 * changes shows. A scope the app would join
 * is noted on its line but is no change: the apps run as they did.
 *
 * Loaded only by `diff`: the diff library stays out of every other command.
 */
import { structuredPatch } from 'diff';
import type { ApplyAllResult } from '../shared/api/results.js';
import type { AppSpec } from '../shared/schemas/spec.js';
import { joinedScope } from './commands/apply.js';
import type { SpecSet } from './spec-files.js';
import { specYaml } from './spec-yaml.js';

/** Lines of context around each change, as `diff -u`. */
const CONTEXT = 3;

/** Whether applying the set would change anything: a new or changed app, or one deleted. */
export function hasChanges(result: ApplyAllResult): boolean {
  return result.items.some((app) => app.action !== 'unchanged') || result.pruned.length > 0;
}

export function diffText(result: ApplyAllResult, set: SpecSet): string {
  const local = new Map(set.specs.map((spec, i) => [spec.name, { spec, source: set.sources[i] ?? spec.name }]));
  let out = '';
  for (const app of result.items) {
    const file = local.get(app.name);
    const joined = joinedScope(app);
    const joins = joined ? ` (joins scope ${joined})` : '';
    if (app.action === 'unchanged') {
      out += `app/${app.name} unchanged${joins}\n`;
    } else if (app.action === 'created') {
      out += `app/${app.name} created${joins}\n`;
      if (file) out += prefixed('+', specYaml(file.spec));
    } else {
      out += `app/${app.name} changed (revision ${app.previousRevision} → ${app.revision})${joins}\n`;
      if (file && app.current) {
        out += unifiedDiff(app.current, `app/${app.name} revision ${app.previousRevision} (hub)`, file.spec, file.source);
      }
    }
  }
  for (const app of result.pruned) {
    out += `app/${app.name} deleted\n`;
    if (app.current) out += prefixed('-', specYaml(app.current));
  }
  return out;
}

/** Every line of `text` behind `mark`. */
function prefixed(mark: '+' | '-', text: string): string {
  return text
    .split('\n')
    .slice(0, -1)
    .map((line) => `${mark}${line}\n`)
    .join('');
}

/** `diff -u` of two specs: `---`/`+++` naming each side, then the hunks. */
export function unifiedDiff(from: AppSpec, fromName: string, to: AppSpec, toName: string): string {
  const fromText = specYaml(inKeyOrderOf(from, to) as AppSpec);
  const patch = structuredPatch(fromName, toName, fromText, specYaml(to), undefined, undefined, { context: CONTEXT });
  if (patch.hunks.length === 0) return '';
  let out = `--- ${fromName}\n+++ ${toName}\n`;
  for (const hunk of patch.hunks) {
    // As diff -u: a side with no lines is numbered from the line before the hunk.
    const oldStart = hunk.oldLines === 0 ? hunk.oldStart - 1 : hunk.oldStart;
    const newStart = hunk.newLines === 0 ? hunk.newStart - 1 : hunk.newStart;
    out += `@@ -${oldStart},${hunk.oldLines} +${newStart},${hunk.newLines} @@\n`;
    for (const line of hunk.lines) out += `${line}\n`;
  }
  return out;
}

/**
 * `value` with the keys of each object in the order `model` (the file's spec) writes them, its
 * other keys after: the hub keeps a spec's key order as applied, and a file that writes the same
 * fields in another order (a Compose export read back) would otherwise show every moved field as
 * changed.
 */
export function inKeyOrderOf(value: unknown, model: unknown): unknown {
  if (Array.isArray(value)) return value.map((item, i) => inKeyOrderOf(item, Array.isArray(model) ? model[i] : undefined));
  if (value === null || typeof value !== 'object') return value;
  const source = value as Record<string, unknown>;
  const shape = model !== null && typeof model === 'object' && !Array.isArray(model) ? (model as Record<string, unknown>) : {};
  const order = Object.keys(shape);
  const keys = [...order.filter((key) => Object.hasOwn(source, key)), ...Object.keys(source).filter((key) => !order.includes(key))];
  return Object.fromEntries(keys.map((key) => [key, inKeyOrderOf(source[key], shape[key])]));
}

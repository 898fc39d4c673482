/**
 * Label arguments as kubectl takes them: `key=value` sets, `key-` removes.
 * Keys and values are checked against the same patterns the hub and the app
 * spec schema use, so a label the CLI accepts is never refused later.
 */
import { LABEL_KEY_PATTERN, LABEL_VALUE_PATTERN } from '../shared/ids.js';
import { UsageError } from './errors.js';

const keyRe = new RegExp(LABEL_KEY_PATTERN);
const valueRe = new RegExp(LABEL_VALUE_PATTERN);

const KEY_RULE = 'a key is [prefix/]name: up to 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit';
const VALUE_RULE = 'a value is empty or up to 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit';

export interface LabelChanges {
  set: Record<string, string>;
  remove: string[];
}

/** Returns a problem with one `key=value`, or undefined when it is fine. */
export function labelProblem(key: string, value: string): string | undefined {
  if (!keyRe.test(key)) return `invalid label key "${key}": ${KEY_RULE}`;
  if (!valueRe.test(value)) return `invalid label value "${value}" for key "${key}": ${VALUE_RULE}`;
  return undefined;
}

/** `key=value` → [key, value]; the value is everything after the first `=`, and may be empty. */
function splitAssignment(arg: string): [string, string] | undefined {
  const at = arg.indexOf('=');
  return at < 0 ? undefined : [arg.slice(0, at), arg.slice(at + 1)];
}

/**
 * `["site=roof", "tier-"]` → `{ set: { site: "roof" }, remove: ["tier"] }`.
 * Throws UsageError for a malformed argument, a bad key or value, or the same
 * key given twice (set twice, or both set and removed).
 */
export function parseLabelArgs(args: readonly string[]): LabelChanges {
  if (args.length === 0) throw new UsageError('no labels given: expected key=value to set or key- to remove');
  const set: Record<string, string> = {};
  const remove: string[] = [];
  const seen = new Set<string>();
  for (const arg of args) {
    const assignment = splitAssignment(arg);
    let key: string;
    if (assignment) {
      const [k, value] = assignment;
      const problem = labelProblem(k, value);
      if (problem) throw new UsageError(problem);
      key = k;
      set[key] = value;
    } else if (arg.endsWith('-') && arg.length > 1) {
      key = arg.slice(0, -1);
      if (!keyRe.test(key)) throw new UsageError(`invalid label key "${key}" in "${arg}": ${KEY_RULE}`);
      remove.push(key);
    } else {
      throw new UsageError(`invalid label argument "${arg}": expected key=value to set or key- to remove`);
    }
    if (seen.has(key)) throw new UsageError(`label "${key}" is given more than once`);
    seen.add(key);
  }
  return { set, remove };
}

/** `--label k=v` options of the agent: assignments only; a later value for the same key is an error, not a silent override. */
export function parseLabelAssignments(args: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const arg of args) {
    const assignment = splitAssignment(arg);
    if (!assignment) throw new UsageError(`invalid label "${arg}": expected key=value`);
    const [key, value] = assignment;
    const problem = labelProblem(key, value);
    if (problem) throw new UsageError(problem);
    if (Object.hasOwn(labels, key)) throw new UsageError(`label "${key}" is given more than once`);
    labels[key] = value;
  }
  return labels;
}

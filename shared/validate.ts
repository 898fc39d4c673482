/**
 * One validator per schema for the whole process, made on first use and
 * cached by the schema object: the precompiled one when the build step wrote
 * one for this exact schema (shared/validators/*.generated.js, `npm run
 * validators`) and the process has loaded it, otherwise compiled by ajv now.
 * The common group is loaded here; the hub and the agent add theirs
 * (usePrecompiled). A precompiled validator is found by the schema's JSON,
 * so a schema edited since the file was written is compiled at run time,
 * never checked by stale code (and test/unit/precompiled-validators.test.ts
 * fails until the file is rewritten).
 *
 * Errors are reported as `path: rule`, with the path written the way a user
 * reads their YAML (`spec.containers[0].ports[1]: must match pattern "…"`).
 */
import type { Static, TSchema } from '@sinclair/typebox';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { newAjv } from './schema-compiler.js';
import { VALIDATORS as COMMON_VALIDATORS } from './validators/common.generated.js';

export interface ValidationIssue {
  /** `spec.containers[0].ports[1]`; empty for the document itself. */
  path: string;
  message: string;
}

export type Validated<T> = { ok: true; value: T } | { ok: false; issues: ValidationIssue[] };

const compiled = new WeakMap<TSchema, ValidateFunction>();
const precompiled = new Map<string, ValidateFunction>(COMMON_VALIDATORS);
let runTimeAjv: ReturnType<typeof newAjv> | undefined;

/** Adds a group of precompiled validators: the hub and the agent add theirs when their module loads, before any use. */
export function usePrecompiled(validators: ReadonlyMap<string, ValidateFunction>): void {
  for (const [key, fn] of validators) precompiled.set(key, fn);
}

/**
 * What the precompiled validators are looked up by: the schema's JSON, all
 * that ajv reads of it (TypeBox's symbol keys are not part of it). The text
 * itself rather than a hash of it: no two schemas can share a key, and
 * hashing would load node:crypto into every command.
 */
export function schemaKey(schema: TSchema): string {
  return JSON.stringify(schema);
}

/** The build step's validator for exactly this schema, if it wrote one and this process has loaded it. */
export function precompiledValidator(schema: TSchema): ValidateFunction | undefined {
  return precompiled.get(schemaKey(schema));
}

/** ajv's validator for `schema`, compiled now, in this process. */
export function compileAtRunTime(schema: TSchema): ValidateFunction {
  runTimeAjv ??= newAjv();
  return runTimeAjv.compile(schema);
}

/** The validator `validate` and `decode` use for `schema`. */
export function validatorFor(schema: TSchema): ValidateFunction {
  let fn = compiled.get(schema);
  if (!fn) {
    fn = precompiledValidator(schema) ?? compileAtRunTime(schema);
    compiled.set(schema, fn);
  }
  return fn;
}

/** `/spec/containers/0/ports/1` → `spec.containers[0].ports[1]`. */
export function toUserPath(pointer: string): string {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^[0-9]+$/.test(part)) out += `[${part}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(part)) out += out === '' ? part : `.${part}`;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out;
}

function joinPath(base: string, key: string): string {
  return toUserPath(`${base}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`);
}

function toIssue(error: ErrorObject): ValidationIssue {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return { path: joinPath(error.instancePath, String(params.missingProperty)), message: 'is required' };
    case 'additionalProperties':
      return { path: joinPath(error.instancePath, String(params.additionalProperty)), message: 'is not a known field' };
    case 'propertyNames':
      return { path: toUserPath(error.instancePath), message: `has an invalid key "${String(params.propertyName)}"` };
    case 'enum':
      return {
        path: toUserPath(error.instancePath),
        message: `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`,
      };
    case 'pattern': {
      const examples = (error.parentSchema as { examples?: unknown[] } | undefined)?.examples;
      const hint = examples?.length ? ` (e.g. ${examples.map((e) => JSON.stringify(e)).join(', ')})` : '';
      return { path: toUserPath(error.instancePath), message: `${error.message ?? 'must match pattern'}${hint}` };
    }
    default:
      return { path: toUserPath(error.instancePath), message: error.message ?? error.keyword };
  }
}

/**
 * ajv reports one error per failed branch of a union of literals; users want
 * "must be one of a, b, c". Collapse `const` failures under an `anyOf` into one.
 */
function collapse(errors: ErrorObject[]): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const literalUnions = new Map<string, unknown[]>();
  for (const error of errors) {
    if (error.keyword === 'const' && /\/anyOf\/[0-9]+\/const$/.test(error.schemaPath)) {
      const values = literalUnions.get(error.instancePath) ?? [];
      values.push((error.params as { allowedValue: unknown }).allowedValue);
      literalUnions.set(error.instancePath, values);
      continue;
    }
    if (error.keyword === 'anyOf' && literalUnions.has(error.instancePath)) continue;
    issues.push(toIssue(error));
  }
  for (const [pointer, values] of literalUnions) {
    issues.push({ path: toUserPath(pointer), message: `must be one of ${values.map((v) => JSON.stringify(v)).join(', ')}` });
  }
  const seen = new Set<string>();
  return issues.filter((issue) => {
    const key = `${issue.path}\0${issue.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

export function validate<S extends TSchema>(schema: S, value: unknown): Validated<Static<S>> {
  const fn = validatorFor(schema);
  if (fn(value)) return { ok: true, value: value as Static<S> };
  return { ok: false, issues: collapse(fn.errors ?? []) };
}

/** Parse a JSON payload (Buffer or string) and validate it; malformed JSON is one issue at the root. */
export function decode<S extends TSchema>(schema: S, payload: Buffer | string): Validated<Static<S>> {
  let value: unknown;
  try {
    value = JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8'));
  } catch (err) {
    return { ok: false, issues: [{ path: '', message: `is not valid JSON (${(err as Error).message})` }] };
  }
  return validate(schema, value);
}

export function formatIssue(issue: ValidationIssue): string {
  return `${issue.path === '' ? '(document)' : issue.path}: ${issue.message}`;
}

export function formatIssues(issues: readonly ValidationIssue[]): string {
  return issues.map(formatIssue).join('\n');
}

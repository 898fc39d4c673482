/**
 * The one ajv configuration, used both by the build step that writes the
 * precompiled validators (cli/validator-code.ts, `npm run validators`) and
 * by the run-time compile of a schema that has none (shared/validate.ts):
 * a precompiled validator is the code this ajv would compile, so errors read
 * the same from either.
 *
 * ajv itself is loaded only when a schema is compiled: a process whose
 * schemas are all precompiled never loads it (compiling the app spec schema
 * alone took 57–80 ms of every `flotilla apply`). `require` keeps the compile
 * synchronous; the release bundle (build.mjs) leaves the call to
 * node_modules, where ajv is installed as a dependency.
 */
import { createRequire } from 'node:module';
import type { Ajv, Options } from 'ajv';

const require = createRequire(import.meta.url);

// verbose: errors carry their schema, so a pattern error can quote the schema's `examples`.
const OPTIONS = { allErrors: true, strict: true, allowUnionTypes: true, verbose: true } as const satisfies Options;

/** The string formats the schemas may use (ajv-formats). */
const FORMATS = ['date-time'];

/** A new ajv with Flotilla's options and formats; `extra` adds options that change how code is emitted, never what it checks. */
export function newAjv(extra: Pick<Options, 'code'> = {}): Ajv {
  const { Ajv: AjvClass } = require('ajv') as typeof import('ajv');
  // ajv-formats is CommonJS: its plugin is module.exports itself (and again on `.default`).
  const addFormats = require('ajv-formats') as (ajv: Ajv, formats: string[]) => Ajv;
  const ajv = new AjvClass({ ...OPTIONS, ...extra });
  addFormats(ajv, FORMATS);
  return ajv;
}

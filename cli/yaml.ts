/**
 * The YAML library, loaded on first use: `flotilla --help` registers every
 * command, and most runs print a table or JSON, so loading YAML up front
 * would cost each of them (~10 ms, bench/cli-start.ts).
 *
 * `loadYaml()` is the fast way, for a command that knows it needs YAML
 * (`apply`): in the release build (build.mjs) YAML is a chunk of the bundle,
 * one file (~7 ms to load here), where requiring it from node_modules
 * resolves and compiles each of its ~80 files (21–35 ms). `yaml()` serves
 * callers that cannot wait (`-o yaml` output): the module already loaded, or
 * else node_modules' copy through `require`. Either way a process holds one.
 */
import { createRequire } from 'node:module';

type Yaml = typeof import('yaml');

const require = createRequire(import.meta.url);
let loaded: Yaml | undefined;

export async function loadYaml(): Promise<Yaml> {
  const module = await import('yaml');
  // YAML is CommonJS: the bundle's chunk exports it whole as `default`; Node also gives it as named exports.
  loaded ??= (module as Yaml & { default?: Yaml }).default ?? module;
  return loaded;
}

export function yaml(): Yaml {
  loaded ??= require('yaml') as Yaml;
  return loaded;
}

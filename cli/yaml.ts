/**
 * The YAML library, loaded on first use. `flotilla --help` registers every
 * command, and most runs print a table or JSON: loading YAML up front cost
 * each of them ~10 ms (bench/cli-start.ts). `require` keeps the callers
 * synchronous; the release bundle (build.mjs) leaves the call to
 * node_modules, where yaml is installed as a dependency.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export function yaml(): typeof import('yaml') {
  return require('yaml') as typeof import('yaml');
}

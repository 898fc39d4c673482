/**
 * Flotilla's version, from its package.json: the one the CLI prints and the
 * agent reports, so the two cannot disagree.
 *
 * The file is found by walking up from this module, because the module sits
 * at a different depth in each way Flotilla runs: `shared/` in a checkout run
 * through tsx, `dist/cli/` or `dist/cli/chunks/` in the release bundle
 * (build.mjs), either of them under `node_modules/flotilla/` once installed.
 * The first package.json named `flotilla` on the way up is the package root.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_NAME = 'flotilla';

/** What a version is when no package.json can be read (a copied-out file): still a string, and plainly not a release. */
export const UNKNOWN_VERSION = 'unknown';

interface PackageRoot {
  dir: string;
  version: string;
}

let found: PackageRoot | null | undefined;

function findPackageRoot(): PackageRoot | null {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === PACKAGE_NAME) return { dir, version: typeof pkg.version === 'string' ? pkg.version : UNKNOWN_VERSION };
    } catch {
      // No package.json here, or not JSON: keep walking up.
    }
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

function packageRootOnce(): PackageRoot | null {
  if (found === undefined) found = findPackageRoot();
  return found;
}

/** The version in Flotilla's package.json (`0.1.0`), or `unknown`. */
export function flotillaVersion(): string {
  return packageRootOnce()?.version ?? UNKNOWN_VERSION;
}

/** The folder holding Flotilla's package.json (files shipped beside the code, such as examples/dashboard, are found from here). */
export function packageRoot(): string | undefined {
  return packageRootOnce()?.dir;
}

/**
 * `npm run build`: the release JS, what `flotilla` runs once installed.
 *
 *   dist/cli/bin.js      the executable (package.json "bin"), with its shebang
 *   dist/cli/inventory-bin.js  `flotilla-inventory` (package.json "bin"): `flotilla inventory` as one file for Ansible's -i
 *   dist/cli/chunks/     the code of each command and of the hub and the agent, loaded when used
 *
 * One esbuild bundle rather than tsc's file-per-module output: measured side
 * by side (bench/cli-start.ts --with-tsc, BENCHMARKS.md "CLI start"), Node
 * resolving and compiling a few hundred small files (TypeBox alone is ~700)
 * made `flotilla --help` take 2.0× as long and `flotilla get devices` 1.5×,
 * and the bundle's hub and agent never held more memory at rest.
 * Code splitting keeps each command's dynamic `import()` (cli/main.ts,
 * COMMANDS) a separate chunk, so a command loads only what it uses.
 *
 * Left out of the bundle: better-sqlite3, a native addon (its .node file is
 * found relative to its own package). Development dependencies (tsx,
 * typescript...) are not installed with the release, so importing one at run
 * time fails the build. Some are reached at run time through `createRequire`
 * and so come from node_modules: aedes-persistence
 * (broker/mqtt/retained-index.ts), the browser build of mqtt.js the dashboard
 * serves (broker/http/dashboard.ts), YAML for `-o yaml` output (cli/yaml.ts;
 * `apply` loads the bundled copy, a chunk of its own) and ajv, only to
 * compile a schema no precompiled validator covers (shared/schema-compiler.ts:
 * the validators are generated ahead of time, shared/validators/, and the
 * bundle holds no schema compiler).
 *
 * dockerode and docker-modem are bundled, but not all they load: docker-modem
 * loads ssh2 for ssh:// engines (a 16 MiB WebAssembly memory for its crypto,
 * allocated when loaded) and dockerode loads @grpc/grpc-js, @grpc/proto-loader
 * and protobufjs for BuildKit build sessions; an agent does neither, since it
 * drives the engine of the device it runs on and never builds an image. With
 * 3 apps an agent holds 61.9-62.6 MiB with them stubbed, 69.7-70.3 MiB with
 * them loaded from node_modules (six readings each over 150 s, side by side).
 * In the bundle they are a stub whose use throws one clear error (and the
 * start-up checks refuse an ssh:// DOCKER_HOST first:
 * agent/runtime/engine-endpoint.ts). Only imports from dockerode and
 * docker-modem are stubbed; the packages stay installed with dockerode.
 *
 * dist/console/: the web console the hub serves (broker/console/build.mjs).
 *
 * dist/bundles/ (docker/release-bundle.sh) is not touched.
 */
import { readdir, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { build } from 'esbuild';
import { buildConsole } from './broker/console/build.mjs';

const OUT_DIR = 'dist/cli';
const EXTERNAL = ['better-sqlite3'];
const DEVELOPMENT_ONLY = /^(tsx|typescript|vitest|esbuild)(\/.*)?$/;
/** What dockerode and docker-modem load for features the agent never uses (see the header), and the error a use of one throws. */
const UNUSED_BY_THE_AGENT = {
  ssh2: 'ssh:// Docker hosts are not supported by the Flotilla agent: use unix:// or tcp://',
  '@grpc/grpc-js': 'BuildKit build sessions (gRPC) are not part of the Flotilla release: the agent does not build images',
  '@grpc/proto-loader': 'BuildKit build sessions (gRPC) are not part of the Flotilla release: the agent does not build images',
  protobufjs: 'BuildKit build progress (protobuf) is not part of the Flotilla release: the agent does not build images',
};
const DOCKERODE_FILE = /[\\/]node_modules[\\/](dockerode|docker-modem)[\\/]/;

/** Type-only imports are gone before esbuild resolves anything, so what reaches this is a run-time import. */
const refuseDevelopmentDependencies = {
  name: 'refuse-development-dependencies',
  setup(build) {
    build.onResolve({ filter: DEVELOPMENT_ONLY }, (args) => ({
      errors: [{ text: `${args.path} is a development dependency, not installed with the release (imported by ${args.importer})` }],
    }));
  },
};

/**
 * Each of UNUSED_BY_THE_AGENT, when dockerode or docker-modem requires it, is a
 * module that loads (both require theirs when loaded, and ssh.js reads
 * `.Client` at once) but throws its message when anything of it is called or
 * constructed.
 */
const stubUnusedDockerodeParts = {
  name: 'stub-unused-dockerode-parts',
  setup(build) {
    const names = Object.keys(UNUSED_BY_THE_AGENT).map((name) => name.replace(/[/.]/g, '\\$&'));
    const filter = new RegExp(`^(${names.join('|')})$`);
    build.onResolve({ filter }, (args) =>
      DOCKERODE_FILE.test(args.importer) ? { path: args.path, namespace: 'unused-by-the-agent' } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'unused-by-the-agent' }, (args) => ({
      loader: 'js',
      contents: `const message = ${JSON.stringify(UNUSED_BY_THE_AGENT[args.path])};
const unsupported = function () { throw new Error(message); };
module.exports = new Proxy(unsupported, {
  get: (_target, key) => (typeof key === 'string' && key !== 'then' && key !== '__esModule' ? unsupported : undefined),
  apply: unsupported,
  construct: unsupported,
});
`,
    }));
  },
};

// Bundled CommonJS packages call `require` for Node's built-ins; an ES module has none of its own.
const REQUIRE_SHIM =
  "import { createRequire as __flotillaRequire } from 'node:module'; const require = __flotillaRequire(import.meta.url);";

// tsc's output from before the bundle would otherwise linger beside it.
await Promise.all(['dist/shared', 'dist/broker', 'dist/agent'].map((dir) => rm(dir, { recursive: true, force: true })));

const result = await build({
  // The telemetry writer runs on a thread of its own, which starts from a file (broker/telemetry/writer.ts).
  entryPoints: { bin: 'cli/bin.ts', 'inventory-bin': 'cli/inventory-bin.ts', 'telemetry-writer': 'broker/telemetry/writer-thread.ts' },
  outdir: OUT_DIR,
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: EXTERNAL,
  plugins: [refuseDevelopmentDependencies, stubUnusedDockerodeParts],
  banner: { js: REQUIRE_SHIM },
  // Readable stack traces from a device's log matter more than a few hundred KB.
  minify: false,
  metafile: true,
  logLevel: 'warning',
});

// Files are overwritten in place and only then are chunks of earlier builds removed, never the
// whole folder first: a hub or a test running from dist/ while someone rebuilds (npm pack runs
// this) still finds every chunk its own build had, and unchanged sources give the same names.
const written = new Set(Object.keys(result.metafile.outputs).map((path) => relative(OUT_DIR, path)));
const chunks = await readdir(join(OUT_DIR, 'chunks'));
await Promise.all(
  chunks.filter((name) => !written.has(`chunks/${name}`)).map((name) => rm(join(OUT_DIR, 'chunks', name), { force: true })),
);

await buildConsole({ outDir: 'dist/console' });

/**
 * Agent images for the container-swap tests, made FROM the agent image
 * docker/build-images.sh pushed (`<registry>/flotilla/agent:<version>`) with
 * COPY steps only (the legacy builder, nothing run):
 *
 *   n   that image with this checkout's dist/cli (built here into a scratch
 *       folder, so the image holds the swap even when the pushed one predates it)
 *   n1  n with another version in its package.json (an upgrade that works)
 *   n2  n1 with another version and a bin.js whose `agent` exits 1 at once
 *       (an upgrade that crashes at start; `--version` still answers)
 *
 * Each is pushed to the loopback registry under a tag of this run, so it has
 * a digest, and is named by digest (`repo@sha256:…`) as the hub's desired
 * state names an agent image.
 */
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../../support/processes.js';
import { docker } from './docker-cli.js';
import { engineProblem, TEST_REGISTRY } from './engine.js';

const run = promisify(execFile);

/**
 * Why the swap tests cannot run here, if they cannot: they need the agent image
 * docker/build-images.sh pushes. Locally they skip with how to make it; in CI
 * (which builds the images before the tests) that is a failure.
 */
export function agentImageProblem(version: string): string | undefined {
  if (engineProblem) return engineProblem;
  const base = `${TEST_REGISTRY}/flotilla/agent:${version}`;
  try {
    execFileSync('docker', ['image', 'inspect', base], { stdio: 'pipe', timeout: 10_000 });
    return undefined;
  } catch {
    try {
      execFileSync('docker', ['pull', '-q', base], { stdio: 'pipe', timeout: 120_000 });
      return undefined;
    } catch {
      const problem = `no agent image ${base}; make it with: flock /tmp/flotilla-e2e.lock docker/build-images.sh`;
      if (process.env.CI === 'true') throw new Error(`the container swap tests need the agent image in CI: ${problem}`);
      console.warn(`[e2e] skipping the container swap tests: ${problem}`);
      return problem;
    }
  }
}

export interface SwapImage {
  version: string;
  /** `repo@sha256:…`, as the hub names it. */
  ref: string;
  /** The local image ID. */
  id: string;
  tag: string;
}

export interface SwapImages {
  base: string;
  n: SwapImage;
  n1: SwapImage;
  n2: SwapImage;
  /** Removes the local images and the scratch folder. */
  remove(): Promise<void>;
}

/** What `npm run build` makes, from this checkout, into a scratch copy: dist/ of the checkout is left alone. */
async function buildDist(dir: string): Promise<string> {
  const src = join(dir, 'src');
  mkdirSync(src);
  for (const entry of ['cli', 'shared', 'agent', 'broker', 'build.mjs', 'package.json', 'tsconfig.json']) {
    cpSync(join(REPO_ROOT, entry), join(src, entry), { recursive: true });
  }
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(src, 'node_modules'));
  mkdirSync(join(src, 'dist/cli/chunks'), { recursive: true });
  await run(process.execPath, ['build.mjs'], { cwd: src, timeout: 180_000, maxBuffer: 16 * 1024 * 1024 });
  return join(src, 'dist/cli');
}

async function build(context: string, dockerfile: string, tag: string): Promise<SwapImage & { tag: string }> {
  writeFileSync(join(context, 'Dockerfile'), dockerfile);
  await run('docker', ['build', '-q', '-t', tag, context], {
    env: { ...process.env, DOCKER_BUILDKIT: '0' },
    timeout: 180_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  await docker('push', '-q', tag);
  const digests = JSON.parse(await docker('image', 'inspect', '--format', '{{json .RepoDigests}}', tag)) as string[];
  const repo = tag.slice(0, tag.lastIndexOf(':'));
  const ref = digests.find((d) => d.startsWith(`${repo}@`));
  if (!ref) throw new Error(`${tag} has no digest in ${repo} after the push: ${digests.join(', ')}`);
  const id = await docker('image', 'inspect', '--format', '{{.Id}}', tag);
  return { version: '', ref, id, tag };
}

function packageJson(version: string): string {
  return `${JSON.stringify({ name: 'flotilla', version, type: 'module', private: true }, null, 2)}\n`;
}

export async function buildSwapImages(baseVersion: string, suffix: string): Promise<SwapImages> {
  const base = `${TEST_REGISTRY}/flotilla/agent:${baseVersion}`;
  const repo = `${TEST_REGISTRY}/flotilla-test/agent-swap`;
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-agent-swap-images-'));
  const made: string[] = [];
  try {
    const dist = await buildDist(dir);

    const nCtx = join(dir, 'n');
    cpSync(dist, join(nCtx, 'cli'), { recursive: true });
    const n = await build(nCtx, `FROM ${base}\nCOPY cli /opt/flotilla/dist/cli\n`, `${repo}:n-${suffix}`);
    made.push(n.tag);

    const n1Version = `${baseVersion}-swap1`;
    const n1Ctx = join(dir, 'n1');
    mkdirSync(n1Ctx);
    writeFileSync(join(n1Ctx, 'package.json'), packageJson(n1Version));
    const n1 = await build(n1Ctx, `FROM ${n.tag}\nCOPY package.json /opt/flotilla/package.json\n`, `${repo}:n1-${suffix}`);
    made.push(n1.tag);

    const n2Version = `${baseVersion}-swap2`;
    const n2Ctx = join(dir, 'n2');
    mkdirSync(n2Ctx);
    writeFileSync(join(n2Ctx, 'package.json'), packageJson(n2Version));
    // Its agent crashes at start; everything else (a swap, --version) runs the real CLI.
    writeFileSync(
      join(n2Ctx, 'bin.js'),
      [
        "if (process.argv[2] === 'agent' && process.argv[3] !== 'swap') {",
        "  console.error('agent build ' + process.argv[1] + ' crashes at start (a deliberately broken release)');",
        '  process.exit(1);',
        '}',
        "await import('./bin-real.js');",
        '',
      ].join('\n'),
    );
    const n2 = await build(
      n2Ctx,
      // The real bin.js stays as bin-real.js; the broken one takes its name.
      `FROM ${n1.tag}\nCOPY --from=${n1.tag} /opt/flotilla/dist/cli/bin.js /opt/flotilla/dist/cli/bin-real.js\n` +
        'COPY package.json /opt/flotilla/package.json\nCOPY bin.js /opt/flotilla/dist/cli/bin.js\n',
      `${repo}:n2-${suffix}`,
    );
    made.push(n2.tag);

    return {
      base,
      n: { ...n, version: baseVersion },
      n1: { ...n1, version: n1Version },
      n2: { ...n2, version: n2Version },
      async remove() {
        for (const tag of made.reverse()) await docker('image', 'rm', '-f', tag).catch(() => undefined);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    for (const tag of made.reverse()) await docker('image', 'rm', '-f', tag).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * How long a short `flotilla` command takes, wall clock from spawn to exit:
 * the release build (`npm run build`, dist/cli/bin.js) against the
 * development launcher through tsx (cli/flotilla.js), in the same run.
 *
 *   npx tsx bench/cli-start.ts [--runs 21] [--no-build] [--with-tsc] [--rss-wait-s 0] [--json]
 *
 * `--with-tsc` adds tsc's file-per-module output (compiled into a temp dir
 * for the run, then removed) as a third variant: the
 * alternative build.mjs was chosen over. `--rss-wait-s S` also starts each
 * variant's hub, and an agent connected to it, one variant at a time, and
 * reads their RSS (/proc/<pid>/status) after S seconds at rest.
 *
 * Commands: `flotilla --help`, and `flotilla get devices` against a hub
 * started for the run (a `flotilla server` on loopback, temp data dir, no
 * devices). `node -e 0` is timed beside them: the floor no Node program
 * starts under, which moves with the machine's load as much as the rest.
 *
 * Runs interleave (one of each variant per round, the order rotating), so a
 * burst of load elsewhere hits every variant alike. Reported: the median and
 * range of each, the tsx/built ratio of medians, and the built median less
 * the floor's. The process exits by itself; the hub and its data dir are
 * removed.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from '../test/support/ports.js';
import { REPO_ROOT, scratchDir, startHubProcess, stopAll } from '../test/support/processes.js';
import { waitFor } from '../test/support/wait.js';
import { positiveInt } from './int-arg.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '21' },
    'no-build': { type: 'boolean', default: false },
    'with-tsc': { type: 'boolean', default: false },
    'rss-wait-s': { type: 'string', default: '0' },
    json: { type: 'boolean', default: false },
  },
});
const runs = positiveInt('runs', values.runs);
const rssWaitS = positiveInt('rss-wait-s', values['rss-wait-s'], 0);

interface Variant {
  name: string;
  /** node's arguments before the command's own. */
  entry: string[];
}

const BUILT: Variant = { name: 'built (dist/cli/bin.js)', entry: [join(REPO_ROOT, 'dist/cli/bin.js')] };
const TSX: Variant = { name: 'tsx (cli/flotilla.js)', entry: [join(REPO_ROOT, 'cli/flotilla.js')] };
/** A temp dir with the repository's package.json and a link to its node_modules, so the compiled files run as the sources do. */
const TSC_DIR = mkdtempSync(join(tmpdir(), 'flotilla-cli-start-tsc-'));
const TSC: Variant = { name: 'tsc output', entry: [join(TSC_DIR, 'cli/bin.js')] };

/** tsc's output of the tree; a type error somewhere in it does not stop it emitting. */
function compileWithTsc(): void {
  copyFileSync(join(REPO_ROOT, 'package.json'), join(TSC_DIR, 'package.json'));
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(TSC_DIR, 'node_modules'));
  const tsc = join(REPO_ROOT, 'node_modules/typescript/bin/tsc');
  const args = ['-p', 'tsconfig.json', '--noEmit', 'false', '--outDir', TSC_DIR, '--rootDir', '.', '--rewriteRelativeImportExtensions'];
  spawnSync(process.execPath, [tsc, ...args], { cwd: REPO_ROOT, stdio: 'ignore' });
  readFileSync(join(TSC_DIR, 'cli/bin.js')); // throws when tsc emitted nothing
}

function rssKb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  return Number(line?.replace(/[^0-9]/g, ''));
}

interface RssRow {
  variant: string;
  hubKb: number;
  agentKb: number;
}

/** One variant's hub and an agent connected to it, at rest for `rssWaitS` seconds; both stopped after. */
async function restingRss(variant: Variant): Promise<RssRow> {
  const dir = scratchDir('flotilla-cli-start-');
  const [mqttPort, httpPort] = [await freePort(), await freePort()];
  const started: ChildProcess[] = [];
  const start = (args: string[]) => {
    const child = spawn(process.execPath, [...variant.entry, ...args], { cwd: REPO_ROOT, stdio: 'ignore' });
    started.push(child);
    return child;
  };
  try {
    const hub = start([
      'server',
      '--data-dir',
      join(dir, 'hub'),
      '--host',
      '127.0.0.1',
      '--mqtt-port',
      `${mqttPort}`,
      '--ws-port',
      '0',
      '--http-port',
      `${httpPort}`,
    ]);
    await waitFor(`${variant.name} hub`, async () => (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).ok, { timeoutMs: 30_000 });
    const deviceId = `cli-start-${started.length}-${process.pid}`;
    const agent = start([
      'agent',
      '--device-id',
      deviceId,
      '--hub-url',
      `mqtt://127.0.0.1:${mqttPort}`,
      '--data-dir',
      join(dir, 'agent'),
      '--container-name-prefix',
      'cli-start-',
    ]);
    await waitFor(
      `${variant.name} agent online`,
      async () => {
        const res = await fetch(`http://127.0.0.1:${httpPort}/api/v1/devices/${deviceId}`);
        return res.ok && ((await res.json()) as { online?: boolean }).online === true;
      },
      { timeoutMs: 30_000 },
    );
    await new Promise((resolve) => setTimeout(resolve, rssWaitS * 1000));
    return { variant: variant.name, hubKb: rssKb(hub.pid!), agentKb: rssKb(agent.pid!) };
  } finally {
    for (const child of started.reverse()) {
      child.kill('SIGTERM');
      if (child.exitCode === null) await new Promise((resolve) => child.once('exit', resolve));
    }
  }
}

/** Milliseconds from spawn to exit; a non-zero exit fails the benchmark (a fast failure is no result). */
function timeRun(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      const elapsed = performance.now() - started;
      if (code === 0) resolve(elapsed);
      else reject(new Error(`node ${args.join(' ')} exited ${code}: ${stderr}`));
    });
  });
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

interface Row {
  command: string;
  variant: string;
  medianMs: number;
  minMs: number;
  maxMs: number;
}

async function main(): Promise<void> {
  if (!values['no-build']) execFileSync('npm', ['run', '--silent', 'build'], { cwd: REPO_ROOT, stdio: 'inherit' });
  const variants = [BUILT, TSX];
  if (values['with-tsc']) {
    compileWithTsc();
    variants.splice(1, 0, TSC);
  }
  const hub = await startHubProcess();
  const commands: { name: string; args: string[] }[] = [
    { name: 'flotilla --help', args: ['--help'] },
    { name: 'flotilla get devices', args: ['--hub', hub.url, 'get', 'devices'] },
  ];
  const cases = [
    ...commands.flatMap((command) =>
      variants.map((variant) => ({ command: command.name, variant: variant.name, args: [...variant.entry, ...command.args] })),
    ),
    { command: 'node -e 0', variant: 'floor', args: ['-e', '0'] },
  ];
  const samples = new Map<number, number[]>(cases.map((_, i) => [i, []]));
  const rss: RssRow[] = [];
  const loadBefore = loadavg()[0]!;
  try {
    // One discarded round: the first spawn of each pays for a cold page cache.
    for (const c of cases) await timeRun(c.args);
    for (let round = 0; round < runs; round++) {
      for (let k = 0; k < cases.length; k++) {
        const i = (k + round) % cases.length;
        samples.get(i)!.push(await timeRun(cases[i]!.args));
      }
    }
    await stopAll();
    if (rssWaitS > 0) for (const variant of variants) rss.push(await restingRss(variant));
  } finally {
    await stopAll();
    rmSync(TSC_DIR, { recursive: true, force: true });
  }
  const loadAfter = loadavg()[0]!;
  const rows: Row[] = cases.map((c, i) => {
    const xs = samples.get(i)!;
    return { command: c.command, variant: c.variant, medianMs: median(xs), minMs: Math.min(...xs), maxMs: Math.max(...xs) };
  });
  const floor = rows.find((row) => row.variant === 'floor')!.medianMs;
  const ratios = commands.map((command) => {
    const built = rows.find((row) => row.command === command.name && row.variant === BUILT.name)!.medianMs;
    const tsx = rows.find((row) => row.command === command.name && row.variant === TSX.name)!.medianMs;
    const tsc = rows.find((row) => row.command === command.name && row.variant === TSC.name)?.medianMs;
    return {
      command: command.name,
      tsxOverBuilt: tsx / built,
      builtOverFloorMs: built - floor,
      ...(tsc ? { tscOverBuilt: tsc / built } : {}),
    };
  });

  if (values.json) {
    console.log(JSON.stringify({ runs, loadavg: [loadBefore, loadAfter], rows, ratios, rss }, null, 2));
    return;
  }
  console.log(`${runs} runs each, interleaved; load average ${loadBefore.toFixed(1)} → ${loadAfter.toFixed(1)}\n`);
  console.log('| command | variant | median ms | min–max ms |');
  console.log('| --- | --- | --- | --- |');
  for (const row of rows) {
    console.log(`| \`${row.command}\` | ${row.variant} | ${row.medianMs.toFixed(0)} | ${row.minMs.toFixed(0)}–${row.maxMs.toFixed(0)} |`);
  }
  console.log('');
  for (const ratio of ratios) {
    console.log(
      `\`${ratio.command}\`: tsx takes ${ratio.tsxOverBuilt.toFixed(2)}× the built code${ratio.tscOverBuilt ? `, tsc's output ${ratio.tscOverBuilt.toFixed(2)}×` : ''}; the built code is ${ratio.builtOverFloorMs.toFixed(0)} ms over \`node -e 0\``,
    );
  }
  if (rss.length > 0) {
    console.log(`\nAt rest for ${rssWaitS} s (an agent with no apps, connected to its hub):\n`);
    console.log('| variant | hub RSS MiB | agent RSS MiB |');
    console.log('| --- | --- | --- |');
    for (const row of rss) console.log(`| ${row.variant} | ${(row.hubKb / 1024).toFixed(1)} | ${(row.agentKb / 1024).toFixed(1)} |`);
  }
}

await main();

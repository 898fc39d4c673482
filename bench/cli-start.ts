/**
 * How long a short `flotilla` command takes, wall clock from spawn to exit:
 * the release build (`npm run build`, dist/cli/bin.js) against the
 * development launcher through tsx (cli/flotilla.js), in the same run.
 *
 *   npx tsx bench/cli-start.ts [--runs 21] [--no-build] [--with-tsc] [--rss-wait-s 0]
 *                              [--before OLD/dist/cli/bin.js] [--hub-starts 0] [--json]
 *
 * `--with-tsc` adds tsc's file-per-module output (compiled into a temp dir
 * for the run, then removed) as a third variant: the
 * alternative build.mjs was chosen over. `--rss-wait-s S` also starts each
 * variant's hub, and an agent connected to it, one variant at a time, and
 * reads their RSS (/proc/<pid>/status) after S seconds at rest.
 *
 * `--before BIN` adds another build's bin.js (an earlier checkout's `npm run
 * build`) as a variant, for before/after figures from the same rounds.
 * `--hub-starts N` also times, N times per built variant (interleaved), a
 * `flotilla server` from spawn to its first answer on /healthz, and then its
 * first `apps.apply` (the hub's schemas are used for the first time there).
 *
 * Commands: `flotilla --help`, `flotilla get devices` and `flotilla apply -f`
 * of an unchanged spec, against a hub started for the run (a `flotilla
 * server` on loopback, temp data dir, no devices). `node -e 0` is timed
 * beside them: the floor no Node program starts under, which moves with the
 * machine's load as much as the rest.
 *
 * Runs interleave (one of each variant per round, the order rotating), so a
 * burst of load elsewhere hits every variant alike. Reported: the median and
 * range of each, the tsx/built ratio of medians, and the built median less
 * the floor's. The process exits by itself; the hub and its data dir are
 * removed.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { hubServerArgs, REPO_ROOT, scratchDir, startHubProcess, stopAll } from '../test/support/processes.js';
import { waitFor } from '../test/support/wait.js';
import { positiveInt } from './int-arg.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '21' },
    'no-build': { type: 'boolean', default: false },
    'with-tsc': { type: 'boolean', default: false },
    'rss-wait-s': { type: 'string', default: '0' },
    before: { type: 'string' },
    'hub-starts': { type: 'string', default: '0' },
    json: { type: 'boolean', default: false },
  },
});
const runs = positiveInt('runs', values.runs);
const rssWaitS = positiveInt('rss-wait-s', values['rss-wait-s'], 0);
const hubStarts = positiveInt('hub-starts', values['hub-starts'], 0);

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
const BEFORE: Variant | undefined = values.before === undefined ? undefined : { name: `before (${values.before})`, entry: [values.before] };

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
  const { args: hubArgs, mqttPort, httpPort } = await hubServerArgs(join(dir, 'hub'));
  const started: ChildProcess[] = [];
  const start = (args: string[]) => {
    const child = spawn(process.execPath, [...variant.entry, ...args], { cwd: REPO_ROOT, stdio: 'ignore' });
    started.push(child);
    return child;
  };
  try {
    const hub = start(hubArgs);
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

interface HubStartRow {
  variant: string;
  healthzMs: number[];
  firstApplyMs: number[];
}

/** One `flotilla server` of `variant`: ms from spawn to its first 200 on /healthz, then ms its first apps.apply takes; stopped after. */
async function hubStart(variant: Variant): Promise<{ healthzMs: number; firstApplyMs: number }> {
  const dir = scratchDir('flotilla-hub-start-');
  const { args, httpPort } = await hubServerArgs(dir);
  const started = performance.now();
  const hub = spawn(process.execPath, [...variant.entry, ...args], { cwd: REPO_ROOT, stdio: 'ignore' });
  try {
    await waitFor(`${variant.name} hub`, async () => (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).ok, {
      timeoutMs: 30_000,
      intervalMs: 2,
    });
    const healthzMs = performance.now() - started;
    const applying = performance.now();
    const res = await fetch(`http://127.0.0.1:${httpPort}/api/v1/apps`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(SPEC),
    });
    if (!res.ok) throw new Error(`${variant.name} hub refused the apply: ${await res.text()}`);
    return { healthzMs, firstApplyMs: performance.now() - applying };
  } finally {
    hub.kill('SIGTERM');
    if (hub.exitCode === null) await new Promise((resolve) => hub.once('exit', resolve));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The app `flotilla apply -f` sends (unchanged after the discarded round: the hub stores nothing new), to a device that never connects. */
const SPEC = {
  name: 'cli-start',
  scheduling: { devices: ['cli-start-device'] },
  spec: { containers: [{ name: 'web', image: '127.0.0.1:5000/cli-start:1', ports: ['127.0.0.1:18080:80'] }] },
};

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
  if (BEFORE) variants.splice(1, 0, BEFORE);
  const hub = await startHubProcess();
  const specFile = join(TSC_DIR, 'cli-start-app.json');
  writeFileSync(specFile, JSON.stringify(SPEC));
  const commands: { name: string; args: string[] }[] = [
    { name: 'flotilla --help', args: ['--help'] },
    { name: 'flotilla get devices', args: ['--hub', hub.url, 'get', 'devices'] },
    { name: 'flotilla apply -f', args: ['--hub', hub.url, 'apply', '-f', specFile] },
  ];
  const cases = [
    ...commands.flatMap((command) =>
      variants.map((variant) => ({ command: command.name, variant: variant.name, args: [...variant.entry, ...command.args] })),
    ),
    { command: 'node -e 0', variant: 'floor', args: ['-e', '0'] },
  ];
  const samples = new Map<number, number[]>(cases.map((_, i) => [i, []]));
  const rss: RssRow[] = [];
  const hubStartRows: HubStartRow[] = [BUILT, ...(BEFORE ? [BEFORE] : [])].map((v) => ({
    variant: v.name,
    healthzMs: [],
    firstApplyMs: [],
  }));
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
    for (let round = 0; round < hubStarts; round++) {
      const pair = [BUILT, ...(BEFORE ? [BEFORE] : [])];
      for (const variant of round % 2 === 0 ? pair : pair.reverse()) {
        const row = hubStartRows.find((r) => r.variant === variant.name)!;
        const { healthzMs, firstApplyMs } = await hubStart(variant);
        row.healthzMs.push(healthzMs);
        row.firstApplyMs.push(firstApplyMs);
      }
    }
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
    const before = rows.find((row) => row.command === command.name && row.variant === BEFORE?.name)?.medianMs;
    return {
      command: command.name,
      tsxOverBuilt: tsx / built,
      builtOverFloorMs: built - floor,
      ...(tsc ? { tscOverBuilt: tsc / built } : {}),
      ...(before ? { builtOverBefore: built / before, beforeOverFloorMs: before - floor } : {}),
    };
  });
  const hubStartSummary = hubStartRows
    .filter((row) => row.healthzMs.length > 0)
    .map((row) => ({
      variant: row.variant,
      healthzMedianMs: median(row.healthzMs),
      healthzMs: row.healthzMs.map(Math.round),
      firstApplyMedianMs: median(row.firstApplyMs),
      firstApplyMs: row.firstApplyMs.map(Math.round),
    }));

  if (values.json) {
    console.log(JSON.stringify({ runs, loadavg: [loadBefore, loadAfter], rows, ratios, rss, hubStarts: hubStartSummary }, null, 2));
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
      `\`${ratio.command}\`: tsx takes ${ratio.tsxOverBuilt.toFixed(2)}× the built code${ratio.tscOverBuilt ? `, tsc's output ${ratio.tscOverBuilt.toFixed(2)}×` : ''}; the built code is ${ratio.builtOverFloorMs.toFixed(0)} ms over \`node -e 0\`${ratio.builtOverBefore ? ` (${ratio.builtOverBefore.toFixed(2)}× the before build, which is ${ratio.beforeOverFloorMs?.toFixed(0)} ms over it)` : ''}`,
    );
  }
  if (hubStartSummary.length > 0) {
    console.log(`\n\`flotilla server\`, ${hubStarts} starts each, interleaved:\n`);
    console.log('| variant | spawn → /healthz ms, median (all) | first apps.apply ms, median (all) |');
    console.log('| --- | --- | --- |');
    for (const row of hubStartSummary) {
      console.log(
        `| ${row.variant} | ${row.healthzMedianMs.toFixed(0)} (${row.healthzMs.join(', ')}) | ${row.firstApplyMedianMs.toFixed(0)} (${row.firstApplyMs.join(', ')}) |`,
      );
    }
  }
  if (rss.length > 0) {
    console.log(`\nAt rest for ${rssWaitS} s (an agent with no apps, connected to its hub):\n`);
    console.log('| variant | hub RSS MiB | agent RSS MiB |');
    console.log('| --- | --- | --- |');
    for (const row of rss) console.log(`| ${row.variant} | ${(row.hubKb / 1024).toFixed(1)} | ${(row.agentKb / 1024).toFixed(1)} |`);
  }
}

await main();

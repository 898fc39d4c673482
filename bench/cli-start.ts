/**
 * How long a short `flotilla` command takes, wall clock from spawn to exit:
 * the release build (`npm run build`, dist/cli/bin.js) against the
 * development launcher through tsx (cli/flotilla.js), in the same run.
 *
 *   npx tsx bench/cli-start.ts [--runs 21] [--no-build] [--json]
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
import { execFileSync, spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT, startHubProcess, stopAll } from '../test/support/processes.js';
import { positiveInt } from './int-arg.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '21' },
    'no-build': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const runs = positiveInt('runs', values.runs);

interface Variant {
  name: string;
  /** node's arguments before the command's own. */
  entry: string[];
}

const BUILT: Variant = { name: 'built (dist/cli/bin.js)', entry: [join(REPO_ROOT, 'dist/cli/bin.js')] };
const TSX: Variant = { name: 'tsx (cli/flotilla.js)', entry: [join(REPO_ROOT, 'cli/flotilla.js')] };

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
  const hub = await startHubProcess();
  const commands: { name: string; args: string[] }[] = [
    { name: 'flotilla --help', args: ['--help'] },
    { name: 'flotilla get devices', args: ['--hub', hub.url, 'get', 'devices'] },
  ];
  const cases = [
    ...commands.flatMap((command) =>
      [BUILT, TSX].map((variant) => ({ command: command.name, variant: variant.name, args: [...variant.entry, ...command.args] })),
    ),
    { command: 'node -e 0', variant: 'floor', args: ['-e', '0'] },
  ];
  const samples = new Map<number, number[]>(cases.map((_, i) => [i, []]));
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
  } finally {
    await stopAll();
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
    return { command: command.name, tsxOverBuilt: tsx / built, builtOverFloorMs: built - floor };
  });

  if (values.json) {
    console.log(JSON.stringify({ runs, loadavg: [loadBefore, loadAfter], rows, ratios }, null, 2));
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
      `\`${ratio.command}\`: tsx takes ${ratio.tsxOverBuilt.toFixed(2)}× the built code; the built code is ${ratio.builtOverFloorMs.toFixed(0)} ms over \`node -e 0\``,
    );
  }
}

await main();

/**
 * Where a V8 CPU profile (`node --cpu-prof`, e.g. the hub of
 * `bench/fanout.ts --profile DIR`) spent its time within a window: self time
 * by function (with its file), and inclusive time of the frames whose file or
 * function name matches each `--group name=regex`.
 *
 *   npx tsx bench/fanout/profile.ts FILE.cpuprofile [--from-s S] [--to-s S] [--top 30]
 *                                   [--group sign=signDesired --group sqlite=better-sqlite3 …] [--timeline]
 *
 * --timeline prints the busy share of each second first, to find the window.
 * The window is in seconds from the profile's start; by default the busiest
 * stretch is not guessed: the whole profile is read. Inclusive time counts a
 * sample once per group even when the group's frames nest (recursion).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const { values: args, positionals } = parseArgs({
  options: {
    'from-s': { type: 'string', default: '0' },
    'to-s': { type: 'string' },
    top: { type: 'string', default: '30' },
    group: { type: 'string', multiple: true, default: [] },
    timeline: { type: 'boolean', default: false },
  },
  allowPositionals: true,
  strict: true,
});

const file = positionals[0];
if (!file) {
  console.error('usage: npx tsx bench/fanout/profile.ts FILE.cpuprofile [--from-s S] [--to-s S] [--top N] [--group name=regex …]');
  process.exit(2);
}

const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

const fromUs = Number(args['from-s']) * 1e6;
const toUs = args['to-s'] === undefined ? Number.POSITIVE_INFINITY : Number(args['to-s']) * 1e6;
const groups = (args.group as string[]).map((g) => {
  const eq = g.indexOf('=');
  return { name: g.slice(0, eq), pattern: new RegExp(g.slice(eq + 1)) };
});

const where = (frame: CallFrame) => `${frame.functionName || '(anonymous)'} ${shortUrl(frame.url)}:${frame.lineNumber + 1}`;
function shortUrl(url: string): string {
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length);
  const repo = url.search(/\/(broker|shared|agent|cli|bench|test)\//);
  return repo >= 0 ? url.slice(repo + 1) : url.replace(/^file:\/\//, '');
}

if (args.timeline) {
  const busy: number[] = [];
  let at = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i]!;
    const second = Math.floor(at / 1e6);
    busy[second] ??= 0;
    if (byId.get(profile.samples[i]!)!.callFrame.functionName !== '(idle)') busy[second] += profile.timeDeltas[i + 1] ?? 0;
  }
  console.log(`timeline (s: busy %): ${busy.map((us, s) => `${s}:${((us ?? 0) / 1e4).toFixed(0)}`).join(' ')}\n`);
}

const self = new Map<string, number>();
const inclusive = new Map<string, number>(groups.map((g) => [g.name, 0]));
let total = 0;
let idle = 0;
let t = 0;
for (let i = 0; i < profile.samples.length; i++) {
  t += profile.timeDeltas[i]!;
  if (t < fromUs || t > toUs) continue;
  // A sample's weight is the gap to the next one (the last has none: the mean).
  const weight = profile.timeDeltas[i + 1] ?? 0;
  const node = byId.get(profile.samples[i]!)!;
  total += weight;
  if (node.callFrame.functionName === '(idle)') {
    idle += weight;
    continue;
  }
  const key = where(node.callFrame);
  self.set(key, (self.get(key) ?? 0) + weight);
  const hit = new Set<string>();
  for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
    const frame = byId.get(id)!.callFrame;
    for (const g of groups) if (!hit.has(g.name) && (g.pattern.test(frame.functionName) || g.pattern.test(frame.url))) hit.add(g.name);
  }
  for (const name of hit) inclusive.set(name, inclusive.get(name)! + weight);
}

const ms = (us: number) => (us / 1000).toFixed(0);
const pct = (us: number) => `${((us / Math.max(1, total - idle)) * 100).toFixed(1)} %`;
console.log(`window ${ms(total)} ms, busy ${ms(total - idle)} ms, idle ${ms(idle)} ms`);
if (groups.length > 0) {
  console.log('\ninclusive, by group (share of busy time):');
  for (const [name, us] of [...inclusive].sort((a, b) => b[1] - a[1]))
    console.log(`  ${name.padEnd(20)} ${ms(us).padStart(7)} ms  ${pct(us)}`);
}
console.log('\nself time, top functions:');
for (const [key, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(args.top))) {
  console.log(`  ${ms(us).padStart(7)} ms  ${pct(us).padStart(7)}  ${key}`);
}

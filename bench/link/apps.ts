/**
 * The benchmark's three apps, and the check that the hub stored each of
 * their lines exactly once.
 *
 * Each app is one busybox container printing one numbered line every
 * `periodS` seconds:
 *
 *   tick-2s boot=1764331234 n=42 level=info msg="sensor reading ok" value=94
 *
 * `boot` is the second the container's process started, so a recreated
 * container's lines (numbered from 1 again) are told apart from the old ones.
 * Unique lines make duplicates and gaps visible: within one (app, boot) the
 * stored numbers must be exactly 1…max.
 */
import { stringify } from 'yaml';

export interface BenchApp {
  name: string;
  periodS: number;
}

export const APPS: readonly BenchApp[] = [
  { name: 'tick-2s', periodS: 2 },
  { name: 'tick-5s', periodS: 5 },
  { name: 'tick-10s', periodS: 10 },
];

function script(app: BenchApp): string {
  // `sleep & wait`: the TERM trap runs at once instead of after the sleep.
  return [
    "b=$(date +%s); n=0; trap 'exit 0' TERM INT",
    `while :; do n=$((n+1)); echo "${app.name} boot=$b n=$n level=info msg=\\"sensor reading ok\\" value=$((n*47%100))"; sleep ${app.periodS} & wait $!; done`,
  ].join('\n');
}

/** A `flotilla apply -f` file: one document per app, each on `deviceId` only, everything else at its default. */
export function appsYaml(deviceId: string, image: string): string {
  return APPS.map((app) =>
    stringify({
      name: app.name,
      scheduling: { devices: [deviceId] },
      spec: { containers: [{ name: 'main', image, command: ['/bin/sh', '-c', script(app)] }] },
    }),
  ).join('---\n');
}

export interface LineId {
  app: string;
  boot: string;
  n: number;
}

export function parseLine(line: string): LineId | undefined {
  const m = /^(\S+) boot=(\d+) n=(\d+) /.exec(line);
  return m ? { app: m[1]!, boot: m[2]!, n: Number(m[3]) } : undefined;
}

export interface LineCheck {
  /** Lines the hub returned. */
  stored: number;
  /** Distinct (app, boot, n). */
  unique: number;
  /** Stored more than once (extra copies). */
  duplicates: number;
  /** Numbers missing below a run's highest. */
  gaps: number;
  /** Lines that are not the apps' own (the agent's `system` lines, anything else). */
  other: number;
  /** Highest number per `app boot=…` run. */
  runs: Record<string, number>;
  /** The missing numbers: `app boot=… n=…` (the first 100). */
  missing: string[];
}

export function checkLines(lines: readonly { line: string; stream: string }[]): LineCheck {
  const seen = new Map<string, Set<number>>();
  let duplicates = 0;
  let other = 0;
  for (const record of lines) {
    const id = record.stream === 'stdout' ? parseLine(record.line) : undefined;
    if (!id) {
      other++;
      continue;
    }
    const run = `${id.app} boot=${id.boot}`;
    const numbers = seen.get(run) ?? new Set<number>();
    seen.set(run, numbers);
    if (numbers.has(id.n)) duplicates++;
    else numbers.add(id.n);
  }
  let unique = 0;
  let gaps = 0;
  const runs: Record<string, number> = {};
  const missing: string[] = [];
  for (const [run, numbers] of seen) {
    const max = Math.max(...numbers);
    runs[run] = max;
    unique += numbers.size;
    gaps += max - numbers.size;
    for (let n = 1; n < max && missing.length < 100; n++) if (!numbers.has(n)) missing.push(`${run} n=${n}`);
  }
  return { stored: lines.length, unique, duplicates, gaps, other, runs, missing };
}

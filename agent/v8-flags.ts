/**
 * V8 flags the agent process sets for itself, so they hold however it was
 * started (the installed `flotilla`, the release bundle's wrapper, the
 * systemd unit, the image) without a launcher having to pass them.
 *
 * `--no-opt --no-sparkplug`: no optimizing (TurboFan) or baseline
 * (Sparkplug) compiler; everything runs in the Ignition interpreter. The
 * agent is idle almost all the time (a few log lines and one state report a
 * second), so optimized code buys it nothing, while the compilers cost
 * memory: their zones and code objects (anonymous) and the pages of the node
 * binary that hold the compilers themselves (file-backed, but counted in
 * RSS). Measured with 3 apps logging a line a second, bundled build, one
 * reading each after 50 s (BENCHMARKS.md, "Footprint", for the 10-minute run):
 * 70.3 MiB without, 61.2 MiB with them set here at start, 60.8 MiB with them
 * on the command line; idle CPU the same within the noise.
 *
 * Flags that V8 reads only when the heap or the platform is made
 * (`--max-semi-space-size`, `--v8-pool-size`) cannot be changed from here;
 * those belong on the command line (see BENCHMARKS.md).
 *
 * An explicit `--opt` (alias `--turbofan`) or `--sparkplug` on node's command
 * line wins (node refuses both in NODE_OPTIONS): for a gateway with the CPU to
 * spare and heavy log traffic, or to measure the difference.
 *
 * Only the `flotilla agent` command calls this: it changes the whole
 * process, and tests and benchmarks run agents inside processes that also
 * run a hub.
 */
import { setFlagsFromString } from 'node:v8';

/** Each flag, and the command-line spellings that keep its compiler on. */
const AGENT_V8_FLAGS: readonly { flag: string; keptOnBy: readonly string[] }[] = [
  { flag: '--no-opt', keptOnBy: ['--opt', '--turbofan'] },
  { flag: '--no-sparkplug', keptOnBy: ['--sparkplug'] },
];

/** Sets the agent's flags unless node's command line asked otherwise; returns the flags it set. Call before the agent's code is loaded. */
export function useAgentV8Flags(execArgv: readonly string[] = process.execArgv): string[] {
  const given = new Set(execArgv.map((arg) => arg.replaceAll('_', '-')));
  const applied: string[] = [];
  for (const { flag, keptOnBy } of AGENT_V8_FLAGS) {
    if (given.has(flag) || keptOnBy.some((on) => given.has(on))) continue;
    setFlagsFromString(flag);
    applied.push(flag);
  }
  return applied;
}

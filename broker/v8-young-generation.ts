/**
 * The hub's V8 young generation: how far its semi-spaces may grow.
 *
 * V8 sizes the young generation on demand, up to 16 MiB per semi-space on a
 * 64-bit machine, and keeps it once grown. A connect storm of thousands of
 * devices grows it to the maximum, and an idle hub then holds those pages for
 * the rest of its life (BENCHMARKS.md, "Fan-out": idle memory per device).
 * Capped, the same work takes more, shorter scavenges.
 *
 * V8 reads the cap only when the isolate is made, before any JavaScript runs,
 * so it cannot be set from here (v8.setFlagsFromString is too late): every
 * launcher puts HUB_NODE_FLAG on node's command line: the executable's
 * shebang (cli/bin.ts, which `npm install -g` and `npx` run; cli/flotilla.js
 * in a checkout), the release bundle's bin/flotilla, the hub image's
 * entrypoint and `npm start`. The hub says in its "hub ready" log line which
 * cap it runs with, so a hub started some other way shows it.
 */

/** The semi-space cap, MiB, that every launcher passes to node. */
export const HUB_MAX_SEMI_SPACE_MIB = 2;

/** The node flag that sets it, as the launchers spell it. */
export const HUB_NODE_FLAG = `--max-semi-space-size=${HUB_MAX_SEMI_SPACE_MIB}`;

const FLAG = /^--max[-_]semi[-_]space[-_]size(?:=(.*))?$/;

/**
 * The semi-space cap node gave V8, MiB, from its command line and NODE_OPTIONS
 * (which node applies first, so the command line wins), or undefined when V8
 * runs with its default. The last spelling of the flag wins, as in V8.
 */
export function maxSemiSpaceMiB(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions = process.env.NODE_OPTIONS,
): number | undefined {
  const fromOptions = lastValue((nodeOptions ?? '').split(/\s+/).filter((arg) => arg !== ''));
  return lastValue(execArgv) ?? fromOptions;
}

function lastValue(args: readonly string[]): number | undefined {
  let value: number | undefined;
  for (let i = 0; i < args.length; i++) {
    const match = FLAG.exec(args[i]!);
    if (!match) continue;
    const text = match[1] ?? args[++i];
    const mib = Number(text);
    if (text !== undefined && text.trim() !== '' && Number.isFinite(mib)) value = mib;
  }
  return value;
}

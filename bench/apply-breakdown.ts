/**
 * Where the time goes between an apply and the app's first HTTP answer from
 * the device, beside a plain `docker run -d` of the same image and options in
 * the same run (real Docker Engine, images from the loopback registry, a
 * fresh tag every round so both sides pull).
 *
 *   npx tsx bench/apply-breakdown.ts [--rounds 5] [--before OLD/dist/cli/bin.js]
 *
 * The hub and the agent log at debug level into this process; each phase
 * boundary is a log line's `time` (ms, the same clock as Date.now()), or the
 * benchmark's own clock for the POST and the first answer:
 *
 *   POST sent → hub's "desired state published" → agent's "new desired state"
 *   → pull step logged → its "… done" → create logged → done → start logged
 *   → done → first HTTP answer. Create and start are the two parts of one
 *   `run` step, each logged as its own step.
 *
 * Both sides are probed from the moment their command is issued, every
 * 5 ms, each request given PROBE_TIMEOUT_MS.
 *
 * "CLI start" is the release build's `flotilla apply -f FILE` as a process,
 * less a bare POST of the same spec, both of an unchanged spec (nothing for
 * the device to do), timed after each round. `--before BIN` times another
 * build's bin.js the same way in the same rounds (alternating which goes
 * first): the CLI start of an earlier checkout, `npm run build` there.
 *
 * Through the CLI, as a user runs it: `node dist/cli/bin.js apply -f FILE`
 * (a fresh tag each time) as ONE command timed from its launch, probed from
 * its launch, and again probed only once the agent logged its start step done
 * (still timed from the launch): the counterparts of `docker run -d` probed
 * from its launch and once it returned.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { retagInRegistry } from '../test/e2e/support/images.js';
import { freePort } from '../test/support/ports.js';
import { REPO_ROOT } from '../test/support/processes.js';
import { positiveInt } from './int-arg.js';
import { get, median, run, startRealDevice, until } from './real-device.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, before: { type: 'string' } } });
const rounds = positiveInt('rounds', values.rounds);
/** The release build under test, and optionally an earlier one whose CLI start is timed beside it. */
const CLI_BIN = join(REPO_ROOT, 'dist/cli/bin.js');
const BEFORE_BIN = values.before;

/**
 * Both sides are probed from the moment the command is issued, each request
 * given this long: a connection opened while the engine is still starting the
 * container can hang with no answer (seen here: 500 ms, the timeout, twice in
 * a row), so a long timeout measures the probe, not the app.
 */
const PROBE_TIMEOUT_MS = 50;

interface LogLine {
  time: number;
  msg: string;
  app?: string;
  action?: string;
  apps?: string[];
  reason?: string;
  durationMs?: number;
}

const PHASES = [
  'hub: POST sent → desired published',
  'MQTT hop: published → agent received',
  'received → pull step starts (tick wait, observe, plan)',
  'pull (from the loopback registry)',
  'pull done → create starts (observe, plan)',
  'create',
  'create done → start starts (one step: no observation)',
  'start',
  'start done → first HTTP answer',
  'of which: the answering request’s own wait',
  'total: POST sent → first HTTP answer',
  'docker run -d → first HTTP answer',
  'POST sent → first HTTP answer, probed once start was done',
  'of which: start done → first HTTP answer',
  'docker run -d, probed once it returned',
  'CLI start: flotilla apply process − POST alone',
  'CLI start, --before build: its flotilla apply process − POST alone',
  'flotilla apply -f (process) → first HTTP answer, probed from its launch',
  'flotilla apply -f (process) → first HTTP answer, probed once start was done',
] as const;
type Phase = (typeof PHASES)[number];

async function main() {
  const loadAtStart = loadavg();
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  const device = await startRealDevice({ logger });
  const { deviceId, images, apply } = device;
  const scratch = mkdtempSync(join(tmpdir(), 'flotilla-breakdown-'));
  const results = new Map<Phase, number[]>(PHASES.map((p) => [p, []]));
  const add = (phase: Phase, ms: number) => results.get(phase)!.push(Math.round(ms));
  /** `flotilla apply -f FILE` of a release build, as a user runs it; not spawnSync: the hub answering it runs in this process. */
  const flotillaApply = (bin: string, file: string) =>
    run(process.execPath, [bin, 'apply', '-f', file], { env: { ...process.env, FLOTILLA_HUB: device.api.replace(/\/api\/v1$/, '') } });
  /** Deletes the app and waits for its containers to be gone, so the engine is idle when the next measure starts. */
  const removeApp = async (app: string) => {
    await fetch(`${device.api}/apps/${app}`, { method: 'DELETE' });
    await until(`${app}'s containers to be removed`, async () => {
      const { stdout } = await run('docker', ['ps', '-aq', '--filter', `label=flotilla.app=${app}`]);
      return stdout.trim() === '';
    });
  };

  try {
    for (let round = 0; round < rounds; round++) {
      const tag = `breakdown-${Date.now().toString(36)}`;

      const plainPort = await freePort();
      const plainImage = await retagInRegistry(images.v1, `${tag}-plain`);
      let started = Date.now();
      const plain = run('docker', ['run', '-d', '--rm', '-p', `127.0.0.1:${plainPort}:80`, plainImage]);
      await until('docker run to answer', async () => (await get(plainPort, PROBE_TIMEOUT_MS)) === 'v1');
      add('docker run -d → first HTTP answer', Date.now() - started);
      await run('docker', ['rm', '-f', (await plain).stdout.trim()]);

      // The earlier baseline: probed only once `docker run -d` has returned.
      const latePort = await freePort();
      const lateImage = await retagInRegistry(images.v1, `${tag}-late`);
      started = Date.now();
      const late = await run('docker', ['run', '-d', '--rm', '-p', `127.0.0.1:${latePort}:80`, lateImage]);
      await until('docker run to answer', async () => (await get(latePort, PROBE_TIMEOUT_MS)) === 'v1');
      add('docker run -d, probed once it returned', Date.now() - started);
      await run('docker', ['rm', '-f', late.stdout.trim()]);

      const app = `breakdown-${round}`;
      const port = await freePort();
      const spec = {
        name: app,
        scheduling: { devices: [deviceId] },
        spec: {
          containers: [{ name: 'web', image: await retagInRegistry(images.v1, `${tag}-apply`), ports: [`127.0.0.1:${port}:80`] }],
          update: { strategy: 'download-then-kill', minReadySeconds: 1 },
        },
      };
      const from = lines.length;
      started = Date.now();
      await apply(spec);
      let asked = 0;
      await until('the app to answer', async () => {
        asked = Date.now();
        return (await get(port, PROBE_TIMEOUT_MS)) === 'v1';
      });
      const answered = Date.now();
      add('of which: the answering request’s own wait', answered - asked);
      await until('the start step to be logged done', async () => stepDone(lines, from, app, 'start') !== undefined);

      const seen = lines.slice(from);
      const published = seen.find((l) => l.msg === 'desired state published' && l.apps?.some((a) => a.startsWith(`${app}@`)));
      const received = seen.find((l) => l.msg === 'new desired state' && l.apps?.some((a) => a.startsWith(`${app}@`)));
      const begun = (action: string) => seen.find((l) => l.app === app && l.action === action && l.reason !== undefined);
      const marks = [
        started,
        published?.time,
        received?.time,
        begun('pull')?.time,
        stepDone(lines, from, app, 'pull'),
        begun('create')?.time,
        stepDone(lines, from, app, 'create'),
        begun('start')?.time,
        stepDone(lines, from, app, 'start'),
        answered,
      ];
      if (marks.some((m) => m === undefined)) throw new Error(`round ${round}: a phase's log line is missing: ${JSON.stringify(marks)}`);
      const at = marks as number[];
      for (let i = 0; i < 9; i++) add(PHASES[i]!, at[i + 1]! - at[i]!);
      add('total: POST sent → first HTTP answer', answered - started);

      // CLI start: the same spec again, unchanged, through the CLI (and the --before build's) and as a bare POST.
      const file = join(scratch, `${app}.json`);
      writeFileSync(file, JSON.stringify(spec));
      const cliStart = async (bin: string) => {
        const launched = Date.now();
        await flotillaApply(bin, file);
        const cliMs = Date.now() - launched;
        const posted = Date.now();
        await apply(spec);
        return cliMs - (Date.now() - posted);
      };
      const order = BEFORE_BIN === undefined ? [CLI_BIN] : round % 2 === 0 ? [CLI_BIN, BEFORE_BIN] : [BEFORE_BIN, CLI_BIN];
      for (const bin of order) {
        add(
          bin === CLI_BIN
            ? 'CLI start: flotilla apply process − POST alone'
            : 'CLI start, --before build: its flotilla apply process − POST alone',
          await cliStart(bin),
        );
      }

      await removeApp(app);

      // The apply again, probed only once the agent has logged its start step done: the late-probed docker run's counterpart.
      const lateApp = `${app}-late`;
      const lateAppPort = await freePort();
      const lateFrom = lines.length;
      started = Date.now();
      await apply({
        ...spec,
        name: lateApp,
        spec: {
          ...spec.spec,
          containers: [
            { name: 'web', image: await retagInRegistry(images.v1, `${tag}-apply-late`), ports: [`127.0.0.1:${lateAppPort}:80`] },
          ],
        },
      });
      await until('the start step to be logged done', async () => stepDone(lines, lateFrom, lateApp, 'start') !== undefined, 120_000, 1);
      await until('the app to answer', async () => (await get(lateAppPort, PROBE_TIMEOUT_MS)) === 'v1');
      add('POST sent → first HTTP answer, probed once start was done', Date.now() - started);
      add('of which: start done → first HTTP answer', Date.now() - stepDone(lines, lateFrom, lateApp, 'start')!);
      await removeApp(lateApp);

      // Through the CLI, as a user runs it: one command, timed from its launch, probed from its launch.
      const cliApp = `${app}-cli`;
      const cliPort = await freePort();
      const cliFile = join(scratch, `${cliApp}.json`);
      writeFileSync(cliFile, JSON.stringify(withImage(spec, cliApp, await retagInRegistry(images.v1, `${tag}-cli`), cliPort)));
      started = Date.now();
      const command = flotillaApply(CLI_BIN, cliFile);
      await until('the app to answer', async () => (await get(cliPort, PROBE_TIMEOUT_MS)) === 'v1');
      add('flotilla apply -f (process) → first HTTP answer, probed from its launch', Date.now() - started);
      await command;
      await removeApp(cliApp);

      // The same, probed only once the agent logged its start step done: the counterpart of `docker run -d` probed once it returned.
      const cliLateApp = `${app}-cli-late`;
      const cliLatePort = await freePort();
      const cliLateFile = join(scratch, `${cliLateApp}.json`);
      writeFileSync(
        cliLateFile,
        JSON.stringify(withImage(spec, cliLateApp, await retagInRegistry(images.v1, `${tag}-cli-late`), cliLatePort)),
      );
      const cliLateFrom = lines.length;
      started = Date.now();
      await flotillaApply(CLI_BIN, cliLateFile);
      await until(
        'the start step to be logged done',
        async () => stepDone(lines, cliLateFrom, cliLateApp, 'start') !== undefined,
        120_000,
        1,
      );
      await until('the app to answer', async () => (await get(cliLatePort, PROBE_TIMEOUT_MS)) === 'v1');
      add('flotilla apply -f (process) → first HTTP answer, probed once start was done', Date.now() - started);
      await removeApp(cliLateApp);
    }
  } finally {
    await device.close();
    rmSync(scratch, { recursive: true, force: true });
  }

  const ratio = (phase: Phase, anchor: Phase) => (median(results.get(phase)!) / median(results.get(anchor)!)).toFixed(2);
  const load = (averages: number[]) => averages.map((l) => l.toFixed(2)).join(' ');
  console.log(`rounds: ${rounds}; load average ${load(loadAtStart)} at the start, ${load(loadavg())} at the end`);
  console.log(
    `POST / docker run, probed from the command (medians): ${ratio('total: POST sent → first HTTP answer', 'docker run -d → first HTTP answer')}×`,
  );
  console.log(
    `flotilla apply / docker run, probed from the command: ${ratio('flotilla apply -f (process) → first HTTP answer, probed from its launch', 'docker run -d → first HTTP answer')}×`,
  );
  console.log(
    `flotilla apply / docker run, probed once started: ${ratio('flotilla apply -f (process) → first HTTP answer, probed once start was done', 'docker run -d, probed once it returned')}×`,
  );
  console.log(`${'phase'.padEnd(80)} median ms   all (ms)`);
  for (const [phase, xs] of results)
    if (xs.length > 0) console.log(`${phase.padEnd(80)} ${String(median(xs)).padStart(9)}   ${xs.join(', ')}`);
}

/** `spec` as another app: its own name, image and published port. */
function withImage<S extends { name: string; spec: object }>(spec: S, name: string, image: string, port: number): S {
  return { ...spec, name, spec: { ...spec.spec, containers: [{ name: 'web', image, ports: [`127.0.0.1:${port}:80`] }] } };
}

/** When the agent logged the app's step of this kind done (its debug line), if it has. */
function stepDone(lines: readonly LogLine[], from: number, app: string, action: string): number | undefined {
  for (let i = from; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.app === app && l.action === action && l.durationMs !== undefined) return l.time;
  }
  return undefined;
}

await main();

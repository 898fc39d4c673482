/**
 * Downtime per update strategy beside its anchor, the engine's own stop of the
 * old container and start of the new one, measured alike in the same run on a
 * real Docker Engine with images from the loopback registry.
 *
 *   npx tsx bench/update-downtime.ts [--rounds 3]
 *
 * Every measure runs the same probe: a request to the app's published port
 * every PROBE_EVERY_MS, each given PROBE_TIMEOUT_MS, from while the old
 * version answers until the new one does; the downtime is the longest stretch
 * without an answer. A request opened while the engine starts a container can
 * hang until its timeout and nothing answers for a while after the start
 * (BENCHMARKS.md, "Where the apply time goes"), so only measures probed the
 * same way compare.
 *
 * Anchors, through the Engine API as the agent drives it (no CLI process in the gap):
 * - stop + start: the old container stopped, then a new one, created
 *   beforehand with the same options (port, restart policy), started:
 *   `docker stop` then `docker start`.
 * - stop + run: the new one created only after the stop: `docker stop` then `docker run`.
 * Each measure also gives the engine's own gap, the old container's
 * State.FinishedAt to the new one's State.StartedAt, and the requests' gap:
 * from the old one's stop requested to the new one's start returned (the
 * anchor's own clock; for the agent, its log: the stash logged as it begins,
 * the start logged done, whether they are parts of one step or steps of their own).
 *
 * Strategies (a fresh tag per apply, the app committed at v1 first):
 * - download-then-kill: the agent pulls v2 while v1 serves, then swaps.
 * - kill-then-download with v2's image already present (pulled beforehand).
 * - kill-then-download pulling v2 in the gap (its layers on disk, only the tag is new).
 * - start-then-kill publishes no host port by design: measured as the
 *   overlap during which both versions ran (downtime 0 by construction).
 */
import { parseArgs } from 'node:util';
import Dockerode from 'dockerode';
import { pino } from 'pino';
import { retagInRegistry } from '../test/e2e/support/images.js';
import { freePort } from '../test/support/ports.js';
import { positiveInt } from './int-arg.js';
import { get, median, type RealDevice, run, sleep, startRealDevice, until } from './real-device.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' } } });
const rounds = positiveInt('rounds', values.rounds);

const PROBE_TIMEOUT_MS = 50;
const PROBE_EVERY_MS = 5;
/** Long enough for the stashed old container to be inspected before the commit removes it. */
const MIN_READY_SECONDS = 3;

const docker = new Dockerode();

interface Downtime {
  /** The longest stretch without an answer. */
  probed: number;
  /** The old container's FinishedAt → the new one's StartedAt, as the engine recorded them. */
  engine: number;
  /** The old container's stop requested → the new one's start returned, by the caller's clock (the anchor's, or the agent's log). */
  requests: number;
}

/** The fields of the agent's log lines this reads: a step's first line carries its reason, its debug `… done` line its duration. */
interface LogLine {
  time: number;
  app?: string;
  action?: string;
  reason?: string;
  durationMs?: number;
}

const MEASURES = [
  'anchor: stop + start',
  'anchor: stop + run',
  'download-then-kill',
  'kill-then-download, image present',
  'kill-then-download, pulled in the gap',
] as const;
type Measure = (typeof MEASURES)[number];

/**
 * Probes from while `before` answers, runs `act` beside the probe, and stops
 * at the first answer of `after`: returns the longest stretch (ms) between two
 * answers. One loop both measures and sees the end, so the last stretch, the
 * one that ends with the new version's first answer, is always counted.
 */
async function probeThrough(port: number, before: string, after: string, act: () => Promise<void>): Promise<number> {
  await until(`${before} to answer`, async () => (await get(port, PROBE_TIMEOUT_MS)) === before);
  let lastAnswer = Date.now();
  let longest = 0;
  const acting = act();
  const deadline = Date.now() + 120_000;
  for (;;) {
    const answer = await get(port, PROBE_TIMEOUT_MS);
    if (answer !== undefined) {
      longest = Math.max(longest, Date.now() - lastAnswer);
      lastAnswer = Date.now();
      if (answer === after) break;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${after} to answer`);
    await sleep(PROBE_EVERY_MS);
  }
  await acting;
  return longest;
}

async function engineGap(oldId: string, newId: string): Promise<number> {
  const [old, next] = await Promise.all([docker.getContainer(oldId).inspect(), docker.getContainer(newId).inspect()]);
  return Date.parse(next.State.StartedAt) - Date.parse(old.State.FinishedAt);
}

/** The options the agent gives a spec with one published port and no restart policy of its own. */
function createOptions(image: string, port: number): Dockerode.ContainerCreateOptions {
  return {
    Image: image,
    ExposedPorts: { '80/tcp': {} },
    HostConfig: {
      PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: String(port) }] },
      RestartPolicy: { Name: 'unless-stopped' },
    },
  };
}

async function anchor(tag: string, images: RealDevice['images'], createBeforeStop: boolean): Promise<Downtime> {
  const port = await freePort();
  const v1 = await retagInRegistry(images.v1, `${tag}-anchor-1`);
  const v2 = await retagInRegistry(images.v2, `${tag}-anchor-2`);
  await run('docker', ['pull', '-q', v1]);
  await run('docker', ['pull', '-q', v2]);
  const old = await docker.createContainer(createOptions(v1, port));
  let next: Dockerode.Container | undefined;
  try {
    await old.start();
    if (createBeforeStop) next = await docker.createContainer(createOptions(v2, port));
    let requests = 0;
    const probed = await probeThrough(port, 'v1', 'v2', async () => {
      const stopping = Date.now();
      await old.stop({ t: 10 });
      next ??= await docker.createContainer(createOptions(v2, port));
      await next.start();
      requests = Date.now() - stopping;
    });
    return { probed, engine: await engineGap(old.id, next!.id), requests };
  } finally {
    await old.remove({ force: true });
    await next?.remove({ force: true });
  }
}

/** v1 applied and committed, then v2 applied with `strategy`; `prepare` runs on v2's image before the apply. */
async function swap(
  device: RealDevice,
  lines: readonly LogLine[],
  app: string,
  tag: string,
  strategy: string,
  prepare: (image: string) => Promise<void> = async () => undefined,
): Promise<Downtime> {
  const port = await freePort();
  const spec = (image: string) => ({
    name: app,
    scheduling: { devices: [device.deviceId] },
    spec: {
      containers: [{ name: 'web', image, ports: [`127.0.0.1:${port}:80`] }],
      update: { strategy, minReadySeconds: MIN_READY_SECONDS },
    },
  });
  await device.apply(spec(await retagInRegistry(device.images.v1, `${tag}-1`)));
  await until('v1 committed, alone', async () => (await device.phase(app))?.phase === 'running' && (await appContainers(app)).length === 1);
  const [oldId] = await appContainers(app);
  const v2 = await retagInRegistry(device.images.v2, `${tag}-2`);
  await prepare(v2);
  const from = lines.length;
  const probed = await probeThrough(port, 'v1', 'v2', () => device.apply(spec(v2)));
  const newId = (await docker.getContainer(`bench.${app}_web`).inspect()).Id;
  const engine = await engineGap(oldId!, newId);
  // The stash (the old one's stop) logged as it begins, the start logged done: as one step's parts or as steps of their own.
  const logged = (action: string, done: boolean) =>
    lines.slice(from).find((l) => l.app === app && l.action === action && (done ? l.durationMs !== undefined : l.reason !== undefined));
  await until('the start to be logged done', async () => logged('start', true) !== undefined);
  const requests = logged('start', true)!.time - logged('stash', false)!.time;
  await removeApp(device, app);
  return { probed, engine, requests };
}

async function appContainers(app: string): Promise<string[]> {
  const { stdout } = await run('docker', ['ps', '-aq', '--no-trunc', '--filter', `label=flotilla.app=${app}`]);
  return stdout.trim() === '' ? [] : stdout.trim().split('\n');
}

/** Deletes the app and waits for its containers to be gone, so the engine is idle when the next measure starts. */
async function removeApp(device: RealDevice, app: string): Promise<void> {
  await fetch(`${device.api}/apps/${app}`, { method: 'DELETE' });
  await until(`${app}'s containers to be removed`, async () => (await appContainers(app)).length === 0);
}

/** start-then-kill: how long both versions ran side by side, from Docker's events. */
async function overlap(device: RealDevice, app: string, tag: string): Promise<number | undefined> {
  const spec = (image: string) => ({
    name: app,
    scheduling: { devices: [device.deviceId] },
    spec: { containers: [{ name: 'web', image }], update: { strategy: 'start-then-kill', minReadySeconds: 1 } },
  });
  await device.apply(spec(await retagInRegistry(device.images.v1, `${tag}-1`)));
  await until('v1 committed', async () => (await device.phase(app))?.phase === 'running');
  const since = Math.floor(Date.now() / 1000) - 1;
  await device.apply(spec(await retagInRegistry(device.images.v2, `${tag}-2`)));
  await until('v2 committed', async () => {
    const p = await device.phase(app);
    return p?.phase === 'running' && p.revision === 2 && (await appContainers(app)).length === 1;
  });
  const { stdout } = await run('docker', [
    'events',
    '--since',
    `${since}`,
    '--until',
    `${Math.ceil(Date.now() / 1000)}`,
    '--filter',
    'type=container',
    '--filter',
    `label=flotilla.app=${app}`,
    '--format',
    '{{.Action}} {{.TimeNano}}',
  ]);
  const events = stdout
    .trim()
    .split('\n')
    .map((line) => line.split(' ') as [string, string]);
  await removeApp(device, app);
  const newStart = events.find(([action]) => action === 'start');
  const oldDie = events.find(([action]) => action === 'die');
  return newStart && oldDie ? Math.round((Number(oldDie[1]) - Number(newStart[1])) / 1e6) : undefined;
}

async function main() {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  const device = await startRealDevice({ logger });
  const results = new Map<Measure, Downtime[]>(MEASURES.map((m) => [m, []]));
  const overlaps: number[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      const tag = `downtime-${Date.now().toString(36)}`;
      results.get('anchor: stop + start')!.push(await anchor(tag, device.images, true));
      results.get('anchor: stop + run')!.push(await anchor(`${tag}-run`, device.images, false));
      results.get('download-then-kill')!.push(await swap(device, lines, `dtk-${round}`, `${tag}-dtk`, 'download-then-kill'));
      results
        .get('kill-then-download, image present')!
        .push(
          await swap(device, lines, `ktd-${round}`, `${tag}-ktd`, 'kill-then-download', (image) =>
            run('docker', ['pull', '-q', image]).then(() => undefined),
          ),
        );
      results
        .get('kill-then-download, pulled in the gap')!
        .push(await swap(device, lines, `ktdp-${round}`, `${tag}-ktdp`, 'kill-then-download'));
      const both = await overlap(device, `stk-${round}`, `${tag}-stk`);
      if (both !== undefined) overlaps.push(both);
    }
  } finally {
    await device.close();
  }

  const anchors = results.get('anchor: stop + start')!;
  // Per round, against that round's anchor: the machine's load moves both alike.
  const against = (xs: Downtime[], key: keyof Downtime) => ({
    median: median(xs.map((x) => x[key])),
    diff: median(xs.map((x, i) => x[key] - anchors[i]![key])),
    ratio: median(xs.map((x, i) => x[key] / anchors[i]![key])),
  });
  const cell = (x: { median: number; diff: number; ratio: number }) =>
    `${String(x.median).padStart(6)} ${String(x.diff).padStart(6)} ${x.ratio.toFixed(2).padStart(5)}×`;
  console.log(`rounds: ${rounds}; probe every ${PROBE_EVERY_MS} ms, ${PROBE_TIMEOUT_MS} ms per request`);
  console.log("medians in ms; − and × the same round's anchor: stop + start");
  console.log(`${'measure'.padEnd(38)} ${'probed   −anch  ×anch'.padEnd(22)} ${'engine   −anch  ×anch'.padEnd(22)} requests −anch  ×anch`);
  for (const [name, xs] of results) {
    console.log(`${name.padEnd(38)} ${cell(against(xs, 'probed'))}  ${cell(against(xs, 'engine'))}  ${cell(against(xs, 'requests'))}`);
  }
  console.log(`${'start-then-kill: both versions running'.padEnd(38)} ${String(median(overlaps)).padStart(6)}   ${overlaps.join(', ')}`);
  console.log('\nall rounds (ms): probed | engine | requests');
  for (const [name, xs] of results) {
    console.log(
      `${name.padEnd(38)} ${xs.map((x) => x.probed).join(', ')} | ${xs.map((x) => x.engine).join(', ')} | ${xs.map((x) => x.requests).join(', ')}`,
    );
  }
}

await main();

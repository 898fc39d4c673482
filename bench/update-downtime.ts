/**
 * Downtime per update strategy, and apply → answering compared with a plain
 * `docker run` of the same image, measured in the same run on a real Docker
 * Engine with images from the loopback registry.
 *
 *   npx tsx bench/update-downtime.ts [--rounds 3]
 *
 * Downtime: a probe requests the app's published port every 5 ms through an
 * update from v1 to v2; the longest stretch without an answer is the downtime.
 * (start-then-kill publishes no host port by design, so it is measured as the
 * overlap during which both versions ran: its downtime is zero by construction.)
 */
import { parseArgs } from 'node:util';
import { retagInRegistry } from '../test/e2e/support/images.js';
import { freePort } from '../test/support/ports.js';
import { get, median, run, sleep, startRealDevice, until } from './real-device.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' } } });
const rounds = Number(values.rounds);

/** Polls the port until `done`, returning the longest gap (ms) between two answers. */
async function probeGaps(port: number, done: () => boolean): Promise<number> {
  let lastAnswer = Date.now();
  let longest = 0;
  while (!done()) {
    if ((await get(port)) !== undefined) {
      longest = Math.max(longest, Date.now() - lastAnswer);
      lastAnswer = Date.now();
    }
    await sleep(5);
  }
  return longest;
}

async function main() {
  const device = await startRealDevice();
  const { deviceId, images, api, apply, phase } = device;
  const results: Record<string, number[]> = {
    'docker run': [],
    'flotilla apply': [],
    'download-then-kill': [],
    'kill-then-download': [],
    'start-then-kill overlap': [],
  };

  try {
    for (let round = 0; round < rounds; round++) {
      const tag = `bench-${Date.now().toString(36)}`;

      // Baseline: docker run of an image not yet on the machine, until it answers.
      const plainPort = await freePort();
      const plainImage = await retagInRegistry(images.v1, `${tag}-plain`);
      let started = Date.now();
      const { stdout } = await run('docker', ['run', '-d', '--rm', '-p', `127.0.0.1:${plainPort}:80`, plainImage]);
      await until('docker run to answer', async () => (await get(plainPort)) === 'v1');
      results['docker run']!.push(Date.now() - started);
      await run('docker', ['rm', '-f', stdout.trim()]);

      for (const strategy of ['download-then-kill', 'kill-then-download'] as const) {
        const app = `bench-${strategy}-${round}`;
        const port = await freePort();
        const spec = (image: string) => ({
          name: app,
          scheduling: { devices: [deviceId] },
          spec: { containers: [{ name: 'web', image, ports: [`127.0.0.1:${port}:80`] }], update: { strategy, minReadySeconds: 1 } },
        });
        started = Date.now();
        await apply(spec(await retagInRegistry(images.v1, `${tag}-${strategy}-1`)));
        await until('v1 to answer', async () => (await get(port)) === 'v1');
        if (strategy === 'download-then-kill') results['flotilla apply']!.push(Date.now() - started);
        await until('v1 committed', async () => (await phase(app))?.phase === 'running');

        let updated = false;
        const gaps = probeGaps(port, () => updated);
        await apply(spec(await retagInRegistry(images.v2, `${tag}-${strategy}-2`)));
        await until('v2 to answer', async () => (await get(port)) === 'v2');
        updated = true;
        results[strategy]!.push(await gaps);
        await fetch(`${api}/apps/${app}`, { method: 'DELETE' });
      }

      // start-then-kill: how long both versions ran side by side (from Docker's events).
      const app = `bench-beside-${round}`;
      const spec = (image: string) => ({
        name: app,
        scheduling: { devices: [deviceId] },
        spec: { containers: [{ name: 'web', image }], update: { strategy: 'start-then-kill', minReadySeconds: 1 } },
      });
      await apply(spec(await retagInRegistry(images.v1, `${tag}-beside-1`)));
      await until('v1 committed', async () => (await phase(app))?.phase === 'running');
      const since = Math.floor(Date.now() / 1000) - 1;
      await apply(spec(await retagInRegistry(images.v2, `${tag}-beside-2`)));
      await until('v2 committed', async () => {
        const p = await phase(app);
        return p?.phase === 'running' && p.revision === 2;
      });
      await sleep(1500);
      const events = (
        await run('docker', [
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
        ])
      ).stdout
        .trim()
        .split('\n')
        .map((line) => line.split(' ') as [string, string]);
      const newStart = events.find(([action]) => action === 'start');
      const oldDie = events.find(([action]) => action === 'die');
      if (newStart && oldDie) results['start-then-kill overlap']!.push(Math.round((Number(oldDie[1]) - Number(newStart[1])) / 1e6));
      await fetch(`${api}/apps/${app}`, { method: 'DELETE' });
    }
  } finally {
    await device.close();
  }

  const baseline = median(results['docker run']!);
  console.log(`rounds: ${rounds}`);
  console.log('measure                      median ms   all (ms)');
  for (const [name, xs] of Object.entries(results)) {
    const ratio = name === 'flotilla apply' ? `   (${(median(xs) / baseline).toFixed(2)}× docker run)` : '';
    console.log(`${name.padEnd(28)} ${String(median(xs)).padStart(9)}   ${xs.join(', ')}${ratio}`);
  }
}

await main();

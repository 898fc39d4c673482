/**
 * Preloaded into the broker processes bench/fanout.ts starts
 * (`node --import …/gc-probe.mjs`): asked over the IPC channel with
 * `{ type: 'gc-memory' }`, collects all garbage (twice: the first pass may
 * leave what finalizers freed) and answers the process's memory, so that
 * a reading at rest and one with the idle fleet compare live memory, not
 * whenever V8 last collected (idle readings without it varied by ±3 KiB per
 * device from run to run). Plain JavaScript: it loads before tsx is registered.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc');

if (process.send) {
  // The channel must not keep a broker alive that was told to stop.
  process.channel?.unref();
  process.on('message', (message) => {
    if (message?.type !== 'gc-memory') return;
    gc();
    gc();
    const { rss, heapUsed, external, arrayBuffers } = process.memoryUsage();
    process.send?.({ type: 'gc-memory', rss, heapUsed, external, arrayBuffers });
  });
}

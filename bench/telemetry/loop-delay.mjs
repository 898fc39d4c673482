/**
 * Preloaded into a broker process the ingest benchmark starts
 * (`node --import …/loop-delay.mjs`): samples the main thread's event-loop
 * delay with perf_hooks.monitorEventLoopDelay and, asked over the IPC channel
 * with `{ type: 'loop-delay' }`, answers the figures since the last question
 * and starts again. Plain JavaScript: it loads before tsx is registered.
 *
 * A stall is how long a timer due at some moment ran late: the time the loop
 * spent in one piece of work (a commit, a scrape, a burst of packets) that
 * nothing else could interrupt.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';

// 10 ms resolution: a sample every 10 ms, each one measuring how late it ran.
const histogram = monitorEventLoopDelay({ resolution: 10 });
histogram.enable();

if (process.send) {
  // The channel must not keep a broker alive that was told to stop.
  process.channel?.unref();
  process.on('message', (message) => {
    if (message?.type !== 'loop-delay') return;
    const ms = (ns) => Number((ns / 1e6).toFixed(2));
    process.send?.({
      type: 'loop-delay',
      maxMs: ms(histogram.max),
      p99Ms: ms(histogram.percentile(99)),
      meanMs: ms(histogram.mean),
      samples: histogram.count,
    });
    histogram.reset();
  });
}

/**
 * The app reconciler's image collection and a job's image: an image the agent
 * pulled that no app needs is removed, unless a job still needs it
 * (ReconcilerOptions.imagesInUse, which the job runner answers). Over the
 * in-memory runtime: what stays on the device.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Reconciler } from '../../agent/reconcile/reconciler.js';
import { Records } from '../../agent/reconcile/records.js';
import { webAppDesired as desired } from '../support/fixtures.js';
import { MemoryRuntime } from '../support/sim/memory-runtime.js';

const APP = 'registry.local/web:1';
const TOOLS = 'registry.local/tools:1';

async function converge(inUse: ReadonlySet<string>): Promise<string[]> {
  const runtime = new MemoryRuntime({ images: [APP, TOOLS] });
  const reconciler = new Reconciler({
    runtime,
    deviceId: 'dev-1',
    logger: pino({ level: 'silent' }),
    onState: () => undefined,
    // Both pulled by the agent: the app's by the reconciler, the tools by the job runner.
    records: new Records({ pulledImages: [APP, TOOLS] }),
    imagesInUse: () => inUse,
  });
  reconciler.setDesired(desired(1, APP));
  for (let i = 0; i < 20; i++) {
    reconciler.trigger();
    await reconciler.idle();
  }
  reconciler.close();
  return runtime.images();
}

describe("the app reconciler's image collection and jobs", () => {
  it('removes an image the agent pulled once no app and no job needs it', async () => {
    expect(await converge(new Set())).not.toContain(TOOLS);
  });

  it('keeps an image a queued or running job needs', async () => {
    const images = await converge(new Set([TOOLS]));
    expect(images).toContain(TOOLS);
    expect(images).toContain(APP);
  });
});

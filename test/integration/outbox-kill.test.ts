/**
 * The outbox file across a real SIGKILL: a process that wrote its ticks and
 * is killed without closing anything leaves every written message for the
 * next start, in order, and nothing it had only in memory.
 */
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Outbox } from '../../agent/outbox/outbox.js';
import { Cleanup } from '../support/cleanup.js';
import { scratchDir } from '../support/scratch.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const OUTBOX_MODULE = pathToFileURL(resolve(import.meta.dirname, '../../agent/outbox/outbox.ts')).href;

/** Pushes 3 ticks of messages (and one more never written), says "written", then waits to be killed. */
const WRITER = `
const { Outbox } = await import(process.env.OUTBOX_MODULE);
const clock = { t: 0 };
const outbox = new Outbox({ path: process.env.OUTBOX_PATH, maxBytes: 1 << 20, now: () => clock.t, writeIntervalMs: 3_600_000 });
for (let tick = 1; tick <= 3; tick++) {
  outbox.push('logs', Buffer.from('log ' + tick));
  outbox.push('events', Buffer.from('event ' + tick));
  clock.t += 2_000;
  outbox.tick();
}
outbox.push('logs', Buffer.from('only in memory'));
process.stdout.write('written\\n');
setInterval(() => {}, 1000);
`;

describe('outbox across a kill', () => {
  it('keeps every written tick when the process is killed with SIGKILL', async () => {
    const path = join(scratchDir('flotilla-outbox-kill-'), 'outbox.db');
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', WRITER], {
      env: { ...process.env, OUTBOX_MODULE, OUTBOX_PATH: path },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cleanup.add('writer', () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    await new Promise<void>((done, fail) => {
      child.stdout.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('written')) done();
      });
      child.on('exit', (code) => fail(new Error(`writer exited ${code} before writing: ${stderr}`)));
    });
    const exited = new Promise((done) => child.on('exit', (_code, signal) => done(signal)));
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');

    const outbox = new Outbox({ path, maxBytes: 1 << 20 });
    cleanup.add('outbox', () => outbox.close());
    const sent: string[] = [];
    for (let m = outbox.next(); m; m = outbox.next()) {
      outbox.take(m);
      outbox.ack(m);
      sent.push(m.payload.toString());
    }
    expect(sent).toEqual(['event 1', 'event 2', 'event 3', 'log 1', 'log 2', 'log 3']);
  });
});

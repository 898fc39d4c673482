/**
 * A stream sent as DATA frames within the opener's credit: never a byte past
 * it, the stream paused while none is left, everything in order once granted,
 * and the end reported only after the last byte went.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { MAX_DATA_BYTES, SendCredit } from '../../../shared/remote/index.js';
import { OutboundChannel } from '../../../shared/remote/outbound-channel.js';

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('OutboundChannel', () => {
  it('sends within the credit, pauses the source, and resumes on grants until the end', async () => {
    const window = 100_000;
    const credit = new SendCredit(window);
    credit.open(1);
    const source = new PassThrough();
    const sent: Buffer[] = [];
    let ended = false;
    new OutboundChannel({ source, channel: 1, credit, sendData: (_ch, data) => sent.push(data), onEnd: () => (ended = true) });
    const input = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251));
    source.end(input);
    await tick();
    const total = () => sent.reduce((n, b) => n + b.length, 0);
    expect(total()).toBe(window);
    expect(sent.every((b) => b.length <= MAX_DATA_BYTES)).toBe(true);
    expect(source.isPaused()).toBe(true);
    expect(ended).toBe(false);
    for (let round = 0; round < 2; round++) {
      credit.grant(1, window);
      await tick();
    }
    expect(total()).toBe(input.length);
    expect(Buffer.concat(sent).equals(input)).toBe(true);
    await tick();
    expect(ended).toBe(true);
  });

  it('sends nothing once stopped', async () => {
    const credit = new SendCredit(10);
    credit.open(1);
    const source = new PassThrough();
    const sent: Buffer[] = [];
    const channel = new OutboundChannel({ source, channel: 1, credit, sendData: (_ch, data) => sent.push(data), onEnd: () => {} });
    source.write(Buffer.alloc(50));
    await tick();
    expect(sent.length).toBe(1);
    channel.stop();
    credit.grant(1, 1000);
    source.write(Buffer.alloc(50));
    await tick();
    expect(sent.length).toBe(1);
    // A source that lives on (the CLI's stdin) is left paused, with nothing reading it for the channel.
    expect(source.isPaused()).toBe(true);
    expect(source.listenerCount('data')).toBe(0);
    expect(source.readableLength).toBe(50);
  });
});

/**
 * The follow streams' bound (broker/http/event-stream.ts), which the console's
 * fleet, logs and events pages all read through: what the client asked for at
 * once is written whole however large, a client that then stops reading is
 * cut off with a note once what piles up after it passes the bound, and the
 * subscription ends exactly once. A real HTTP server on loopback and a raw
 * TCP client that stops reading.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { openEventStream, type SendEvents } from '../../broker/http/event-stream.js';
import { SseParser } from '../../shared/sse.js';
import { Cleanup } from '../support/cleanup.js';
import { waitFor } from '../support/wait.js';

describe('a follow stream whose client stops reading', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('writes the first events whole, then cuts the stream off past the bound and unsubscribes once', async () => {
    const big = 'x'.repeat(6 * 1024 * 1024);
    let send: SendEvents | undefined;
    let stops = 0;
    const server = createServer((req, res) => {
      openEventStream(
        req,
        res,
        (s) => {
          send = s;
          return { first: [{ event: 'all', data: { big } }], stop: () => stops++ };
        },
        'follower too slow; reconnect',
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.add('server', () => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = (server.address() as AddressInfo).port;

    const socket = connect(port, '127.0.0.1');
    cleanup.add('client', () => void socket.destroy());
    socket.write('GET /follow HTTP/1.1\r\nHost: hub\r\n\r\n');
    // The client stops reading: nothing is taken off its socket until resumed.
    socket.pause();
    await waitFor('the stream to open', () => send !== undefined);
    expect(stops).toBe(0);

    const chunk = { line: 'y'.repeat(64 * 1024) };
    let pushed = 0;
    while (stops === 0 && pushed < 1000) {
      send!([{ event: 'change', data: chunk }]);
      pushed++;
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(stops).toBe(1);
    // 4 MiB of 64 KiB events beyond what the first event left unsent, give or take the kernel's buffers.
    expect(pushed).toBeGreaterThanOrEqual(64);
    expect(pushed).toBeLessThan(200);
    send!([{ event: 'change', data: chunk }]);
    expect(stops).toBe(1);

    const received: Buffer[] = [];
    socket.on('data', (data: Buffer) => received.push(data));
    socket.resume();
    await waitFor('the end of the stream', () => Buffer.concat(received).includes(': follower too slow; reconnect\n\n'), {
      timeoutMs: 10_000,
    });
    const text = Buffer.concat(received).toString('utf8');
    const body = text.slice(text.indexOf('\r\n\r\n') + 4);
    // Chunked transfer encoding: take the event lines out of the chunks the simple way, by parsing what is between sizes.
    const events = new SseParser().push(dechunk(body));
    expect(events[0]!.event).toBe('all');
    expect((JSON.parse(events[0]!.data) as { big: string }).big.length).toBe(big.length);
    expect(events.slice(1).every((e) => e.event === 'change')).toBe(true);
    expect(events.length - 1).toBeLessThanOrEqual(pushed);
  });
});

function dechunk(body: string): string {
  let out = '';
  let at = 0;
  for (;;) {
    const eol = body.indexOf('\r\n', at);
    if (eol < 0) return out;
    const size = Number.parseInt(body.slice(at, eol), 16);
    if (!size) return out;
    out += body.slice(eol + 2, eol + 2 + size);
    at = eol + 2 + size + 2;
  }
}

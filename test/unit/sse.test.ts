import { describe, expect, it } from 'vitest';
import { readSse, type SseEvent, SseParser } from '../../shared/sse.js';

/** Feeds `chunks` one by one and collects every event, in order. */
function parse(chunks: readonly string[]): SseEvent[] {
  const parser = new SseParser();
  return chunks.flatMap((chunk) => parser.push(chunk));
}

/** Every way of cutting `text` in two. */
function everySplit(text: string): string[][] {
  return Array.from({ length: text.length + 1 }, (_, i) => [text.slice(0, i), text.slice(i)]);
}

const STREAM = ': ping\n\nevent: log\ndata: {"id":1,"line":"a"}\n\n: ping\nevent: log\ndata: {"id":2,"line":"b"}\n\n';
const EXPECTED: SseEvent[] = [
  { event: 'log', data: '{"id":1,"line":"a"}' },
  { event: 'log', data: '{"id":2,"line":"b"}' },
];

describe('SseParser', () => {
  it('reads named events and skips comment keep-alives', () => {
    expect(parse([STREAM])).toEqual(EXPECTED);
  });

  it('gives the same events wherever a chunk boundary falls, mid-line included', () => {
    for (const chunks of everySplit(STREAM)) expect(parse(chunks)).toEqual(EXPECTED);
  });

  it('gives the same events when fed one character at a time', () => {
    expect(parse([...STREAM])).toEqual(EXPECTED);
  });

  it('accepts CRLF and lone CR line ends, a CRLF split across chunks counting once', () => {
    const crlf = STREAM.replaceAll('\n', '\r\n');
    for (const chunks of everySplit(crlf)) expect(parse(chunks)).toEqual(EXPECTED);
    expect(parse([STREAM.replaceAll('\n', '\r')])).toEqual(EXPECTED);
  });

  it('dispatches nothing before the blank line that ends an event', () => {
    const parser = new SseParser();
    expect(parser.push('event: log\ndata: {"id":1}\n')).toEqual([]);
    expect(parser.push('\n')).toEqual([{ event: 'log', data: '{"id":1}' }]);
  });

  it('joins several data lines with newlines, defaults the name to message, keeps the last id', () => {
    expect(parse(['id: 7\ndata: one\ndata:two\n\ndata: three\n\n'])).toEqual([
      { event: 'message', data: 'one\ntwo', id: '7' },
      { event: 'message', data: 'three', id: '7' },
    ]);
  });

  it('ignores an event without data, unknown fields, and a leading byte-order mark', () => {
    expect(parse(['\uFEFFevent: log\n\nretry: 1000\nfoo: bar\nevent: x\ndata\n\n'])).toEqual([{ event: 'x', data: '' }]);
  });

  it('drops an event the stream cut off before its blank line', () => {
    expect(parse(['event: log\ndata: {"id":1}\n\nevent: log\ndata: {"id":2}\n'])).toEqual([{ event: 'log', data: '{"id":1}' }]);
  });
});

describe('readSse', () => {
  it('decodes UTF-8 split across chunks inside a multi-byte character', async () => {
    const bytes = new TextEncoder().encode('event: log\ndata: température 21 °C → ok\n\n');
    const cut = bytes.indexOf(0xc3) + 1; // inside the two bytes of "é"
    async function* body(): AsyncGenerator<Uint8Array> {
      yield bytes.slice(0, cut);
      yield bytes.slice(cut, cut + 5);
      yield bytes.slice(cut + 5);
    }
    const events: SseEvent[] = [];
    for await (const event of readSse(body())) events.push(event);
    expect(events).toEqual([{ event: 'log', data: 'température 21 °C → ok' }]);
  });

  it('reads a real fetch Response body', async () => {
    const response = new Response(new Blob([STREAM]).stream(), { headers: { 'content-type': 'text/event-stream' } });
    const events: SseEvent[] = [];
    for await (const event of readSse(response.body!)) events.push(event);
    expect(events).toEqual(EXPECTED);
  });
});

/**
 * A reader for `text/event-stream` bodies (Server-Sent Events), as the hub's
 * follow routes send them: the parsing rules of the HTML spec's "event stream
 * interpretation", fed incrementally.
 *
 * Invariants the parser keeps whatever the chunking:
 * - a line is only interpreted once its terminator (CRLF, LF or CR) has
 *   arrived, so a chunk that ends mid-line, mid-CRLF or mid-UTF-8-sequence
 *   changes nothing;
 * - an event is dispatched at the blank line that ends it, never earlier; an
 *   event cut off by the end of the stream is dropped, as the spec says;
 * - comment lines (`: ping`) and unknown fields are ignored.
 */

export interface SseEvent {
  /** `message` when the event had no `event:` field. */
  event: string;
  /** The `data:` lines joined with `\n`. */
  data: string;
  /** The last event id seen so far on the stream (`id:` persists across events). */
  id?: string;
}

export class SseParser {
  private buffer = '';
  /** The previous chunk ended in CR: an LF starting the next one belongs to it. */
  private skipLf = false;
  private started = false;
  private eventName = '';
  private data: string[] = [];
  private hasData = false;
  private lastId: string | undefined;

  /** Feeds decoded text; returns the events it completed, in order. */
  push(text: string): SseEvent[] {
    let chunk = text;
    if (!this.started && chunk.length > 0) {
      this.started = true;
      if (chunk.startsWith('\uFEFF')) chunk = chunk.slice(1);
    }
    if (chunk.length === 0) return [];
    if (this.skipLf && chunk.startsWith('\n')) chunk = chunk.slice(1);
    this.skipLf = false;
    this.buffer += chunk;
    const events: SseEvent[] = [];
    let start = 0;
    for (;;) {
      const cr = this.buffer.indexOf('\r', start);
      const lf = this.buffer.indexOf('\n', start);
      const end = cr === -1 ? lf : lf === -1 ? cr : Math.min(cr, lf);
      if (end === -1) break;
      let next = end + 1;
      if (this.buffer[end] === '\r') {
        if (end + 1 < this.buffer.length) {
          if (this.buffer[end + 1] === '\n') next = end + 2;
        } else {
          this.skipLf = true;
        }
      }
      const event = this.line(this.buffer.slice(start, end));
      if (event) events.push(event);
      start = next;
    }
    this.buffer = this.buffer.slice(start);
    return events;
  }

  private line(line: string): SseEvent | undefined {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.eventName = value;
        break;
      case 'data':
        this.data.push(value);
        this.hasData = true;
        break;
      case 'id':
        if (!value.includes('\u0000')) this.lastId = value;
        break;
      default:
        // `retry` and unknown fields: nothing a one-shot CLI reader needs.
        break;
    }
    return undefined;
  }

  private dispatch(): SseEvent | undefined {
    const event: SseEvent | undefined = this.hasData
      ? { event: this.eventName || 'message', data: this.data.join('\n'), ...(this.lastId !== undefined ? { id: this.lastId } : {}) }
      : undefined;
    this.eventName = '';
    this.data = [];
    this.hasData = false;
    return event;
  }
}

/**
 * The events of a `fetch` response body, as they complete. Ends when the body
 * ends; a network error while reading is thrown from the iteration.
 */
export async function* readSse(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder('utf-8');
  const parser = new SseParser();
  for await (const chunk of body) {
    yield* parser.push(decoder.decode(chunk, { stream: true }));
  }
  yield* parser.push(decoder.decode());
}

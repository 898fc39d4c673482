/**
 * Just enough of a browser to run examples/dashboard/ in a Node vm: elements
 * with text, classes and children, a form, `location`, `fetch` relative to the
 * page, and the `ws` package as the page's WebSocket. Not a DOM: no parsing,
 * no layout, no events beyond addEventListener/dispatch on an element.
 */
import { createContext, runInContext } from 'node:vm';
import WebSocket from 'ws';

export class MiniElement {
  readonly children: (MiniElement | MiniText)[] = [];
  className = '';
  title = '';
  value = '';
  readonly style: Record<string, string> = {};
  private readonly listeners = new Map<string, ((event: { preventDefault(): void }) => void)[]>();

  constructor(
    readonly tagName: string,
    readonly id = '',
  ) {}

  get textContent(): string {
    return this.children.map((c) => c.textContent).join('');
  }

  set textContent(text: string) {
    this.children.splice(0, this.children.length, new MiniText(String(text)));
  }

  append(...nodes: (MiniElement | MiniText)[]): void {
    this.children.push(...nodes);
  }

  replaceChildren(...nodes: (MiniElement | MiniText)[]): void {
    this.children.splice(0, this.children.length, ...nodes);
  }

  addEventListener(type: string, listener: (event: { preventDefault(): void }) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }

  dispatch(type: string): void {
    for (const listener of this.listeners.get(type) ?? []) listener({ preventDefault() {} });
  }

  /** Child elements with this tag name, in order (direct children only). */
  elements(tag: string): MiniElement[] {
    return this.children.filter((c): c is MiniElement => c instanceof MiniElement && c.tagName === tag);
  }
}

export class MiniText {
  constructor(readonly textContent: string) {}
}

export interface MiniPage {
  byId(id: string): MiniElement;
  /** Runs a script in the page's global scope, as a <script> tag would. */
  run(source: string, filename: string): void;
  /** Closing the tab: its sockets close and its timers stop. */
  close(): void;
}

/** A page at `href` with elements for the given ids (the form's fields, the table body…). */
export function miniPage(href: string, ids: Record<string, string>): MiniPage {
  const url = new URL(href);
  const elements = new Map(Object.entries(ids).map(([id, tag]) => [id, new MiniElement(tag, id)]));
  const document = {
    getElementById: (id: string) => elements.get(id) ?? null,
    createElement: (tag: string) => new MiniElement(tag),
    createTextNode: (text: string) => new MiniText(text),
  };
  // Tracked so close() can end what the page started, as closing a tab does.
  const sockets = new Set<WebSocket>();
  const timers = new Set<NodeJS.Timeout>();
  class PageWebSocket extends WebSocket {
    constructor(address: string, protocols?: string | string[]) {
      super(address, protocols);
      sockets.add(this);
    }
  }
  const track = (timer: NodeJS.Timeout) => {
    timers.add(timer);
    return timer;
  };
  const window: Record<string, unknown> = {
    document,
    location: { href: url.href, hash: url.hash, hostname: url.hostname, protocol: url.protocol, host: url.host },
    navigator: { userAgent: 'flotilla-mini-dom' },
    fetch: (input: string, init?: RequestInit) => fetch(new URL(input, url), init),
    WebSocket: PageWebSocket,
    // Web platform globals a browser has and the mqtt.js bundle reaches for.
    AbortController,
    AbortSignal,
    Blob,
    Event,
    EventTarget,
    performance,
    crypto,
    atob,
    btoa,
    TextDecoder,
    TextEncoder,
    URL,
    URLSearchParams,
    setTimeout: (fn: () => void, ms?: number) => track(setTimeout(fn, ms)),
    clearTimeout,
    setInterval: (fn: () => void, ms?: number) => track(setInterval(fn, ms)),
    clearInterval,
    queueMicrotask,
    console,
  };
  window.window = window;
  // In a browser tab mqtt.js runs its keep-alive timers in a Web Worker, which
  // this stand-in does not have; a `self` that looks like a worker's global
  // scope makes it use plain timers, and changes nothing else it does.
  class DedicatedWorkerGlobalScope {}
  window.self = Object.assign(Object.create(DedicatedWorkerGlobalScope.prototype), window);
  const context = createContext(window);
  return {
    byId(id) {
      const element = elements.get(id);
      if (!element) throw new Error(`no element #${id}`);
      return element;
    },
    run(source, filename) {
      runInContext(source, context, { filename });
    },
    close() {
      for (const timer of timers) clearTimeout(timer);
      for (const socket of sockets) socket.terminate();
    },
  };
}

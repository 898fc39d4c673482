/**
 * The CLI's fetch over node:http (cli/node-fetch.ts), against a real HTTP
 * server on loopback: what HubClient relies on from a fetch — method,
 * headers, a JSON body, a streamed answer, a null-body status, an abort —
 * and a redirect handed to the fetch that follows it; and that it does all
 * that without loading undici, which the global fetch's classes would, nor
 * node:https and TLS for a plain http hub.
 */
import { execFile } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HubClient } from '../../cli/client.js';
import { nodeFetch } from '../../cli/node-fetch.js';
import { REPO_ROOT } from '../support/processes.js';

let server: Server;
let base: string;
let handle: (req: IncomingMessage, body: string, res: ServerResponse) => void;

beforeEach(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => {
      body += chunk.toString();
    });
    req.on('end', () => handle(req, body, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('nodeFetch', () => {
  it('sends headers given as pairs or Headers as fetch would', async () => {
    handle = (req, _body, res) => void res.end(JSON.stringify([req.headers.accept, req.headers['x-two']]));
    const fetch = nodeFetch();
    const pairs = await fetch(`${base}/`, {
      headers: [
        ['Accept', 'application/json'],
        ['X-Two', 'a'],
        ['x-two', 'b'],
      ],
    });
    expect(await pairs.json()).toEqual(['application/json', 'a, b']);
    const headers = await fetch(`${base}/`, { headers: new Headers({ accept: 'text/plain' }) });
    expect(await headers.json()).toEqual(['text/plain', null]);
  });

  it('answers a request without loading undici (the global fetch and its classes), nor TLS for an http hub', async () => {
    handle = (_req, body, res) => void res.writeHead(200, { 'x-seen': body }).end('{"ok":true}');
    // A fresh process: this one has long loaded undici for the global fetch.
    const script = `
      const { nodeFetch } = await import(${JSON.stringify(`${REPO_ROOT}/cli/node-fetch.ts`)});
      const response = await nodeFetch()(${JSON.stringify(`${base}/api`)}, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
      const body = await response.json();
      console.log(JSON.stringify({ status: response.status, seen: response.headers.get('x-seen'), body, loaded: process.moduleLoadList.filter((m) => /undici|NativeModule (https|tls)$/.test(m)) }));
    `;
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO_ROOT }, (err, out) =>
        err ? reject(err) : resolve(out),
      ),
    );
    expect(JSON.parse(stdout)).toEqual({ status: 200, seen: '{"a":1}', body: { ok: true }, loaded: [] });
  });

  it('sends the method, headers and body, and answers with status, headers and body', async () => {
    handle = (req, body, res) => {
      res.writeHead(201, 'Made', { 'content-type': 'application/json', 'x-seen': `${req.method} ${req.url} ${req.headers.authorization}` });
      res.end(JSON.stringify({ echo: JSON.parse(body) }));
    };
    const response = await nodeFetch()(`${base}/api/v1/apps?x=1`, {
      method: 'POST',
      headers: { authorization: 'Bearer k', 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'web' }),
    });
    expect(response.status).toBe(201);
    expect(response.statusText).toBe('Made');
    expect(response.headers.get('x-seen')).toBe('POST /api/v1/apps?x=1 Bearer k');
    expect(await response.json()).toEqual({ echo: { name: 'web' } });
  });

  it('streams the body as it arrives, and gives a 204 no body', async () => {
    let finish = () => {};
    handle = (req, _body, res) => {
      if (req.url === '/empty') return void res.writeHead(204).end();
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('event: a\n\n');
      finish = () => res.end('event: b\n\n');
    };
    const fetch = nodeFetch();
    expect((await fetch(`${base}/empty`)).body).toBeNull();
    const response = await fetch(`${base}/stream`);
    const reader = response.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('event: a\n\n');
    finish();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('event: b\n\n');
    expect((await reader.read()).done).toBe(true);
  });

  it('hands a redirect to the fetch that follows redirects, and returns it as is without one', async () => {
    handle = (_req, _body, res) => void res.writeHead(308, { location: '/elsewhere' }).end();
    const followed: string[] = [];
    const redirects: typeof fetch = async (input) => {
      followed.push(String(input));
      return new Response('{"followed":true}', { status: 200 });
    };
    expect(await (await nodeFetch({ redirects })(`${base}/api`)).json()).toEqual({ followed: true });
    expect(followed).toEqual([`${base}/api`]);
    expect((await nodeFetch()(`${base}/api`)).status).toBe(308);
  });

  it('gives up when the signal aborts, which HubClient reports as no answer in time', async () => {
    handle = () => {}; // never answers
    const client = new HubClient(base, { fetch: nodeFetch(), timeoutMs: 200 });
    await expect(client.call('devices.list', {})).rejects.toThrow(`cannot reach the hub at ${base}: no answer within 0s`);
  });

  it('fails like the global fetch when nothing listens', async () => {
    const client = new HubClient('http://127.0.0.1:1', { fetch: nodeFetch() });
    await expect(client.call('devices.list', {})).rejects.toThrow(
      'cannot reach the hub at http://127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1',
    );
  });
});

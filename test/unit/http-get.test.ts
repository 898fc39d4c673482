/** The agent's GET without fetch, against a real HTTP server on loopback. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BodyTooLarge, httpGet } from '../../agent/http-get.js';

describe('httpGet', () => {
  let server: Server;
  let base: string;
  const seenAuth: (string | undefined)[] = [];

  beforeEach(async () => {
    seenAuth.length = 0;
    server = createServer((req, res) => {
      seenAuth.push(req.headers.authorization);
      if (req.url === '/moved') res.writeHead(302, { location: '/here' }).end();
      else if (req.url === '/here') res.writeHead(200, { 'x-answer': 'yes' }).end('arrived');
      else if (req.url === '/big') res.writeHead(200).end('x'.repeat(5000));
      else if (req.url === '/cut') {
        // Declares more than it sends, then hangs up: a link that drops mid-body.
        res.writeHead(200, { 'content-length': '100000' });
        res.write('y'.repeat(1000), () => res.socket?.destroy());
      } else res.writeHead(404).end('nothing here');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('follows a redirect on the same host with the headers given, or returns it as it is when manual', async () => {
    const followed = await httpGet(`${base}/moved`, { headers: { authorization: 'Bearer t' } });
    expect(followed.status).toBe(200);
    expect(followed.header('X-Answer')).toBe('yes');
    expect(await followed.text(1000)).toBe('arrived');
    expect(seenAuth).toEqual(['Bearer t', 'Bearer t']);

    const manual = await httpGet(`${base}/moved`, { redirect: 'manual' });
    expect(manual.status).toBe(302);
    expect(manual.ok).toBe(false);
    manual.discard();
  });

  it('refuses a body past the limit, and reports a refused connection with its code', async () => {
    const big = await httpGet(`${base}/big`);
    await expect(big.text(4096)).rejects.toBeInstanceOf(BodyTooLarge);
    const missing = await httpGet(`${base}/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.text(1000)).toBe('nothing here');

    const port = (server.address() as AddressInfo).port;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await expect(httpGet(`http://127.0.0.1:${port}/here`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    server.listen(0, '127.0.0.1'); // afterEach closes it again
  });

  it('streams a body chunk by chunk as bytes, and errors the stream when the connection drops before the declared length', async () => {
    const whole = await httpGet(`${base}/big`);
    const chunks: Buffer[] = [];
    for await (const chunk of whole.stream()) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('x'.repeat(5000));
    expect((await (await httpGet(`${base}/here`)).bytes(100)).toString()).toBe('arrived');

    const cut = await httpGet(`${base}/cut`);
    let received = 0;
    const reading = (async () => {
      for await (const chunk of cut.stream()) received += (chunk as Buffer).length;
    })();
    await expect(reading).rejects.toThrow();
    expect(received).toBe(1000);
  });
});

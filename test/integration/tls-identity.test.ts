/**
 * tlsPeerCommonName against real TLS handshakes (node:tls, openssl-made
 * certificates): only a certificate the client CA verified names anyone, and
 * a subject with two CNs names no one. Shaped as Aedes gives clients: the
 * TLSSocket as `conn` (mqtts), or as the upgrade request's socket (wss).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { connect, createServer, type Server, type TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import type { Client } from 'aedes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tlsPeerCommonName } from '../../broker/mqtt/tls-identity.js';
import { serverTlsOptions } from '../../broker/tls/listeners.js';
import { makeTestCerts, type TestCerts } from '../support/dev-certs.js';

const execFileAsync = promisify(execFile);

describe('tlsPeerCommonName', () => {
  let certs: TestCerts;
  let foreign: TestCerts;
  let twoCns: { cert: string; key: string };
  let server: Server;
  /** What the server side saw for the latest connection: as mqtts and as wss. */
  let seen: Promise<{ mqtts: string | undefined; wss: string | undefined }>;
  let resolveSeen: (value: { mqtts: string | undefined; wss: string | undefined }) => void;

  beforeAll(async () => {
    [certs, foreign] = await Promise.all([makeTestCerts(['gw-a']), makeTestCerts(['gw-a'])]);
    // Signed by the same CA, so verified: the ambiguity alone must keep it from naming a device.
    const [key, csr, cert] = ['two-key.pem', 'two.csr', 'two.pem'].map((name) => join(certs.dir, name)) as [string, string, string];
    // biome-ignore format: openssl flag-value pairs
    await execFileAsync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=gw-a/CN=gw-b', '-keyout', key, '-out', csr]);
    // biome-ignore format: openssl flag-value pairs
    await execFileAsync('openssl', ['x509', '-req', '-in', csr, '-CA', join(certs.dir, 'ca.pem'), '-CAkey', join(certs.dir, 'ca-key.pem'), '-set_serial', '7', '-days', '1', '-out', cert]);
    twoCns = { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };

    const { tlsCertFile, tlsKeyFile, tlsClientCaFile } = certs.hubConfig;
    server = createServer(serverTlsOptions(tlsCertFile, tlsKeyFile, tlsClientCaFile), (socket) => {
      const asWss = { conn: new PassThrough(), req: { socket } as unknown as IncomingMessage } as unknown as Client;
      resolveSeen({ mqtts: tlsPeerCommonName({ conn: socket } as unknown as Client), wss: tlsPeerCommonName(asWss) });
      socket.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
  });

  async function handshake(client: { cert?: string; key?: string }) {
    seen = new Promise((resolve) => {
      resolveSeen = resolve;
    });
    const { port } = server.address() as AddressInfo;
    const socket: TLSSocket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: certs.ca, ...client });
    socket.on('error', () => undefined);
    try {
      return await seen;
    } finally {
      socket.destroy();
    }
  }

  it('names the CN of a certificate the client CA signed, on mqtts and on wss', async () => {
    expect(await handshake(certs.client('gw-a'))).toEqual({ mqtts: 'gw-a', wss: 'gw-a' });
  });

  it('names nobody for a client without a certificate', async () => {
    expect(await handshake({})).toEqual({ mqtts: undefined, wss: undefined });
  });

  it('names nobody for the same CN signed by another CA (the handshake still succeeds: the password decides)', async () => {
    expect(await handshake(foreign.client('gw-a'))).toEqual({ mqtts: undefined, wss: undefined });
  });

  it('names nobody for a verified certificate with two CNs', async () => {
    expect(await handshake(twoCns)).toEqual({ mqtts: undefined, wss: undefined });
  });

  it('names nobody on a plaintext connection', () => {
    expect(tlsPeerCommonName({ conn: new PassThrough() } as unknown as Client)).toBeUndefined();
  });
});

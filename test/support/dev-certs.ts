/**
 * Real certificates for TLS tests, made once per test file by the same code
 * as `flotilla certs dev` (openssl), in a temp dir removed afterwards.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeDevCerts } from '../../broker/tls/dev-certs.js';

export interface TestCerts {
  dir: string;
  /** Hub config keys for the TLS listeners, with OS-assigned ports. */
  hubConfig: { tlsCertFile: string; tlsKeyFile: string; tlsClientCaFile: string; mqttsPort: 0; wssPort: 0; httpsPort: 0 };
  /** PEM text of the CA, as the agent's config carries it. */
  ca: string;
  /** PEM text of a device's client certificate and key (CN = the device id). */
  client(deviceId: string): { cert: string; key: string };
  remove(): void;
}

export async function makeTestCerts(clients: readonly string[] = []): Promise<TestCerts> {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-it-certs-'));
  try {
    await makeDevCerts({ outDir: dir, clients });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const read = (name: string) => readFileSync(join(dir, name), 'utf8');
  return {
    dir,
    hubConfig: {
      tlsCertFile: join(dir, 'server.pem'),
      tlsKeyFile: join(dir, 'server-key.pem'),
      tlsClientCaFile: join(dir, 'ca.pem'),
      mqttsPort: 0,
      wssPort: 0,
      httpsPort: 0,
    },
    ca: read('ca.pem'),
    client: (deviceId) => ({ cert: read(`client-${deviceId}.pem`), key: read(`client-${deviceId}-key.pem`) }),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * Real certificates for TLS tests, made once per test file by the same code
 * as `flotilla certs dev` (openssl), in a scratch dir (removed when the test,
 * or for certificates made in beforeAll the file, is over).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeDevCerts } from '../../broker/tls/dev-certs.js';
import { scratchDir } from './scratch.js';

export interface TestCerts {
  dir: string;
  /** Hub config keys for the TLS listeners, with OS-assigned ports. */
  hubConfig: { tlsCertFile: string; tlsKeyFile: string; tlsClientCaFile: string; mqttsPort: 0; wssPort: 0; httpsPort: 0 };
  /** PEM text of the CA, as the agent's config carries it. */
  ca: string;
  /** PEM text of a device's client certificate and key (CN = the device id). */
  client(deviceId: string): { cert: string; key: string };
}

export async function makeTestCerts(clients: readonly string[] = []): Promise<TestCerts> {
  const dir = scratchDir('flotilla-it-certs-');
  await makeDevCerts({ outDir: dir, clients });
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
  };
}

/**
 * `flotilla certs dev`: a local CA and the certificates to try TLS with,
 * made by the `openssl` binary (no certificate code of our own to get wrong).
 *
 *   ca.pem, ca-key.pem                    the CA (reused when both exist, so
 *                                         clients can be added later)
 *   server.pem, server-key.pem            CN and SANs: localhost, 127.0.0.1,
 *                                         ::1 and every --host
 *   client-<id>.pem, client-<id>-key.pem  CN = the device id (mTLS)
 *
 * Invariants: every private key is mode 0600 from the moment it is in the
 * output directory (made in a private temp dir, chmod-ed, then renamed in);
 * openssl reads only configuration files written here, never the system's
 * openssl.cnf, so its defaults cannot add or clash with extensions.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { isDeviceId } from '../../shared/index.js';

export interface DevCertsOptions {
  outDir: string;
  /** Extra server names: DNS names or IP addresses. */
  hosts?: readonly string[];
  /** Device ids to make client certificates for. */
  clients?: readonly string[];
  /** The openssl binary (default: `openssl` on PATH). */
  openssl?: string;
}

export interface MadeFile {
  path: string;
  kind: 'ca' | 'ca-key' | 'server' | 'server-key' | 'client' | 'client-key';
  /** The device id, for client files. */
  deviceId?: string;
  mode: number;
}

export interface DevCerts {
  /** The CA already existed in outDir and signed the new certificates. */
  caReused: boolean;
  /** The SANs of the server certificate, as openssl was given them. */
  serverNames: string[];
  files: MadeFile[];
}

const DEFAULT_SERVER_NAMES = ['localhost', '127.0.0.1', '::1'];
const CA_DAYS = 3650;
// Within the 825 days clients such as Apple's still accept for a server certificate.
const LEAF_DAYS = 825;
const KEY_MODE = 0o600;
const CERT_MODE = 0o644;
/** A DNS name or a wildcard one: nothing that could reach into openssl's config syntax. */
const DNS_NAME = /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export class DevCertsError extends Error {
  override name = 'DevCertsError';
}

export async function makeDevCerts(options: DevCertsOptions): Promise<DevCerts> {
  const serverNames = [...new Set([...DEFAULT_SERVER_NAMES, ...(options.hosts ?? [])])];
  const bad = serverNames.find((name) => isIP(name) === 0 && !DNS_NAME.test(name));
  if (bad !== undefined) throw new DevCertsError(`invalid --host "${bad}": expected a DNS name or an IP address`);
  const clients = [...new Set(options.clients ?? [])];
  const badClient = clients.find((id) => !isDeviceId(id));
  if (badClient !== undefined) throw new DevCertsError(`invalid --client "${badClient}": expected a device id`);

  const openssl = options.openssl ?? 'openssl';
  await checkOpenssl(openssl);
  // Absolute: openssl runs inside the work dir, and the CA's paths are handed to it from there.
  const outDir = resolve(options.outDir);
  await mkdir(outDir, { recursive: true, mode: 0o700 });
  // Same file system as outDir, so the renames below are atomic; 0700, so no key is readable on the way.
  const work = await mkdtemp(join(outDir, '.certs-'));
  const run = (args: string[]) => runOpenssl(openssl, args, work);
  const out = (name: string) => join(outDir, name);
  try {
    const caReused = (await exists(out('ca.pem'))) && (await exists(out('ca-key.pem')));
    const ca = caReused ? { cert: out('ca.pem'), key: out('ca-key.pem') } : { cert: join(work, 'ca.pem'), key: join(work, 'ca-key.pem') };
    if (!caReused) {
      await writeFile(join(work, 'ca.cnf'), caConfig());
      await run([
        'req',
        '-x509',
        '-new',
        '-config',
        'ca.cnf',
        '-extensions',
        'ext',
        ...NEW_KEY,
        '-keyout',
        'ca-key.pem',
        '-out',
        'ca.pem',
        '-days',
        String(CA_DAYS),
        '-sha256',
      ]);
    }
    const leaf = async (base: string, cn: string, ext: string) => {
      await writeFile(join(work, `${base}.cnf`), leafConfig(cn, ext));
      await run(['req', '-new', '-config', `${base}.cnf`, ...NEW_KEY, '-keyout', `${base}-key.pem`, '-out', `${base}.csr`]);
      await run([
        'x509',
        '-req',
        '-in',
        `${base}.csr`,
        '-CA',
        ca.cert,
        '-CAkey',
        ca.key,
        '-set_serial',
        serial(),
        '-days',
        String(LEAF_DAYS),
        '-sha256',
        '-extfile',
        `${base}.cnf`,
        '-extensions',
        'ext',
        '-out',
        `${base}.pem`,
      ]);
    };
    await leaf('server', 'localhost', serverExtensions(serverNames));
    for (const id of clients) await leaf(`client-${id}`, id, CLIENT_EXTENSIONS);

    type Made = [name: string, kind: MadeFile['kind'], deviceId?: string];
    const names: Made[] = caReused
      ? []
      : [
          ['ca.pem', 'ca'],
          ['ca-key.pem', 'ca-key'],
        ];
    names.push(['server.pem', 'server'], ['server-key.pem', 'server-key']);
    for (const id of clients) names.push([`client-${id}.pem`, 'client', id], [`client-${id}-key.pem`, 'client-key', id]);
    const files: MadeFile[] = [];
    for (const [name, kind, deviceId] of names) {
      const mode = name.endsWith('-key.pem') ? KEY_MODE : CERT_MODE;
      await chmod(join(work, name), mode);
      await rename(join(work, name), out(name));
      files.push({ path: out(name), kind, mode, ...(deviceId !== undefined ? { deviceId } : {}) });
    }
    return { caReused, serverNames, files };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** A fresh EC P-256 key, unencrypted (a dev CA; the hub reads its key without a passphrase). */
const NEW_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function caConfig(): string {
  return [
    '[req]',
    'prompt = no',
    'distinguished_name = dn',
    '[dn]',
    'O = Flotilla',
    'CN = Flotilla dev CA',
    '[ext]',
    // pathlen 0: the dev CA signs leaf certificates only, never another CA.
    'basicConstraints = critical, CA:TRUE, pathlen:0',
    'keyUsage = critical, keyCertSign, cRLSign',
    'subjectKeyIdentifier = hash',
    '',
  ].join('\n');
}

function leafConfig(cn: string, extensions: string): string {
  return ['[req]', 'prompt = no', 'distinguished_name = dn', '[dn]', 'O = Flotilla', `CN = ${cn}`, '[ext]', extensions, ''].join('\n');
}

const LEAF_COMMON = [
  'basicConstraints = critical, CA:FALSE',
  'keyUsage = critical, digitalSignature',
  'subjectKeyIdentifier = hash',
  'authorityKeyIdentifier = keyid',
];

function serverExtensions(names: readonly string[]): string {
  const sans = names.map((name) => (isIP(name) === 0 ? `DNS:${name}` : `IP:${name}`));
  return [...LEAF_COMMON, 'extendedKeyUsage = serverAuth', `subjectAltName = ${sans.join(', ')}`].join('\n');
}

const CLIENT_EXTENSIONS = [...LEAF_COMMON, 'extendedKeyUsage = clientAuth'].join('\n');

/** 127 random bits, positive (RFC 5280 §4.1.2.2: unique per CA, at most 20 octets). */
function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return `0x${bytes.toString('hex')}`;
}

async function checkOpenssl(openssl: string): Promise<void> {
  try {
    await runOpenssl(openssl, ['version'], process.cwd());
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new DevCertsError(`"${openssl}" not found: install OpenSSL (Debian: apt-get install openssl)`);
    }
    throw err;
  }
}

function runOpenssl(openssl: string, args: readonly string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    // OPENSSL_CONF would otherwise be read by commands given no -config (x509 -req).
    const env = { ...process.env, OPENSSL_CONF: '/dev/null' };
    execFile(openssl, args, { cwd, env }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return reject(err);
      reject(new DevCertsError(`openssl ${args[0]} failed: ${stderr.trim() || err.message}`));
    });
  });
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

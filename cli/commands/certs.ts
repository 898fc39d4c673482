/**
 * `flotilla certs dev [--out DIR] [--host NAME…] [--client ID…]` — a local CA,
 * a server certificate and device certificates for trying TLS and mTLS
 * (broker/tls/dev-certs.ts), and the flags that use them. Not for production:
 * the CA key sits unencrypted beside the certificates it signs.
 */
import { isAbsolute, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import type { CliIO } from '../context.js';
import { UsageError } from '../errors.js';

interface CertsDevOptions {
  out: string;
  host: string[];
  client: string[];
}

const WHAT: Record<string, string> = {
  ca: 'CA certificate: what agents and the CLI trust (--ca)',
  'ca-key': 'CA private key: keep it off devices',
  server: 'server certificate (--tls-cert)',
  'server-key': 'server private key (--tls-key)',
  client: 'client certificate of device',
  'client-key': 'client private key of device',
};

export function registerCerts(program: Command, io: CliIO): void {
  const certs = program.command('certs').description('certificates for TLS listeners and mutual TLS');
  certs
    .command('dev')
    .description('make a local CA, a server certificate and device certificates with openssl, for trying TLS (not for production)')
    .option('--out <dir>', 'where to write them (an existing CA there is reused)', './data/certs')
    .option(
      '--host <name>',
      'another name or address the hub is reached by, besides localhost, 127.0.0.1 and ::1 (repeatable)',
      collect,
      [],
    )
    .option('--client <device-id>', 'a client certificate whose CN is this device id (repeatable)', collect, [])
    .action(async (options: CertsDevOptions) => {
      const { makeDevCerts, DevCertsError } = await import('../../broker/tls/dev-certs.js');
      let made: Awaited<ReturnType<typeof makeDevCerts>>;
      try {
        made = await makeDevCerts({ outDir: options.out, hosts: options.host, clients: options.client });
      } catch (err) {
        if (err instanceof DevCertsError) throw new UsageError(err.message);
        throw err;
      }
      // Paths as the operator can paste them from here: relative below the working directory, absolute elsewhere.
      const show = (path: string) => {
        const rel = relative(process.cwd(), path);
        return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? resolve(path) : rel;
      };
      const width = Math.max(...made.files.map((f) => show(f.path).length));
      const lines = [made.caReused ? `using the existing CA in ${show(options.out)}` : `made a CA in ${show(options.out)}`];
      for (const file of made.files) {
        const what = `${WHAT[file.kind]}${file.deviceId !== undefined ? ` ${file.deviceId}` : ''}`;
        lines.push(`  ${show(file.path).padEnd(width)}  ${file.mode.toString(8).padStart(4, '0')}  ${what}`);
      }
      lines.push(`server certificate names: ${made.serverNames.join(', ')}`);
      const file = (name: string) => show(`${options.out}/${name}`);
      lines.push(
        '',
        'start the hub with TLS (mqtts 8883, wss 8084, https 7443) and certificate logins:',
        `  flotilla server --tls-cert ${file('server.pem')} --tls-key ${file('server-key.pem')} --tls-client-ca ${file('ca.pem')}`,
      );
      for (const id of options.client) {
        lines.push(
          `run device ${id} by its certificate:`,
          `  flotilla agent --device-id ${id} --hub-url mqtts://localhost:8883 --ca ${file('ca.pem')} --cert ${file(`client-${id}.pem`)} --key ${file(`client-${id}-key.pem`)}`,
        );
      }
      io.stdout(`${lines.join('\n')}\n`);
    });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/**
 * `flotilla certs dev`, the real executable with the real openssl: the files
 * it makes (modes, SANs, CNs, who signed what, read back by `openssl x509`),
 * a CA kept across runs, refusals before anything is written, and a
 * `flotilla server` started with the flags it prints serving https.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { http } from '../support/http.js';
import { freePort } from '../support/ports.js';
import { type RunResult, runCli, scratchDir, spawnCli, startHubProcess, stopAll } from '../support/processes.js';
import { waitFor } from '../support/wait.js';

const execFileAsync = promisify(execFile);
/** Each run starts node and tsx, and openssl makes keys: give a busy two-core machine time. */
const SLOW = { timeout: 60_000 };

/** `flotilla ARGS…` run in `cwd` (the default --out is relative to it). */
function flotilla(args: string[], cwd: string): Promise<RunResult> {
  return runCli(args, { cwd });
}

async function x509Text(file: string): Promise<string> {
  return (await execFileAsync('openssl', ['x509', '-in', file, '-noout', '-text'])).stdout;
}

async function verify(ca: string, cert: string): Promise<string> {
  return (await execFileAsync('openssl', ['verify', '-CAfile', ca, cert])).stdout.trim();
}

function mode(file: string): string {
  return (statSync(file).mode & 0o777).toString(8);
}

describe('flotilla certs dev', () => {
  afterEach(() => stopAll());

  it('makes a CA, a server certificate for loopback and each --host, and a client certificate per --client', SLOW, async () => {
    const cwd = scratchDir('flotilla-it-certs-cli-');
    const result = await flotilla(
      ['certs', 'dev', '--host', 'hub.example.org', '--host', '10.1.2.3', '--client', 'dev-a', '--client', 'dev-b'],
      cwd,
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);

    const out = join(cwd, 'data/certs');
    expect(mode(out)).toBe('700');
    // Only the files it names: the private work dir is gone.
    expect(readdirSync(out).sort()).toEqual(
      [
        'ca-key.pem',
        'ca.pem',
        'client-dev-a-key.pem',
        'client-dev-a.pem',
        'client-dev-b-key.pem',
        'client-dev-b.pem',
        'server-key.pem',
        'server.pem',
      ].sort(),
    );
    for (const key of ['ca-key.pem', 'server-key.pem', 'client-dev-a-key.pem', 'client-dev-b-key.pem'])
      expect(mode(join(out, key)), key).toBe('600');
    for (const cert of ['ca.pem', 'server.pem', 'client-dev-a.pem', 'client-dev-b.pem']) expect(mode(join(out, cert)), cert).toBe('644');
    for (const name of readdirSync(out)) expect(result.stdout).toContain(`data/certs/${name}`);

    const ca = await x509Text(join(out, 'ca.pem'));
    expect(ca).toMatch(/Subject: O = Flotilla, CN = Flotilla dev CA/);
    expect(ca).toMatch(/CA:TRUE, pathlen:0/);

    const server = await x509Text(join(out, 'server.pem'));
    expect(server).toMatch(/Issuer: O = Flotilla, CN = Flotilla dev CA/);
    const sans = server.match(/X509v3 Subject Alternative Name:.*\n\s*(.*)/)?.[1]?.split(', ');
    expect(sans).toEqual([
      'DNS:localhost',
      'IP Address:127.0.0.1',
      'IP Address:0:0:0:0:0:0:0:1',
      'DNS:hub.example.org',
      'IP Address:10.1.2.3',
    ]);
    expect(server).toMatch(/TLS Web Server Authentication/);
    expect(server).toMatch(/CA:FALSE/);

    const client = await x509Text(join(out, 'client-dev-a.pem'));
    expect(client).toMatch(/Subject: O = Flotilla, CN = dev-a\n/);
    expect(client).toMatch(/TLS Web Client Authentication/);
    expect(client).not.toMatch(/Subject Alternative Name/);

    for (const cert of ['server.pem', 'client-dev-a.pem', 'client-dev-b.pem']) {
      expect(await verify(join(out, 'ca.pem'), join(out, cert))).toBe(`${join(out, cert)}: OK`);
    }
  });

  it('keeps the CA on a second run, so a device added later is signed by the CA the hub already trusts', SLOW, async () => {
    const cwd = scratchDir('flotilla-it-certs-cli-');
    expect((await flotilla(['certs', 'dev', '--out', 'pki'], cwd)).code).toBe(0);
    const out = join(cwd, 'pki');
    const caBefore = readFileSync(join(out, 'ca.pem'), 'utf8');
    const caKeyBefore = readFileSync(join(out, 'ca-key.pem'), 'utf8');

    const second = await flotilla(['certs', 'dev', '--out', 'pki', '--client', 'dev-late'], cwd);
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/using the existing CA in pki/);
    expect(second.stdout).not.toContain('pki/ca-key.pem');
    expect(readFileSync(join(out, 'ca.pem'), 'utf8')).toBe(caBefore);
    expect(readFileSync(join(out, 'ca-key.pem'), 'utf8')).toBe(caKeyBefore);
    expect(await verify(join(out, 'ca.pem'), join(out, 'client-dev-late.pem'))).toMatch(/: OK$/);
  });

  it('refuses a client id that is not a device id and a host that is not a name, before writing anything', SLOW, async () => {
    const cwd = scratchDir('flotilla-it-certs-cli-');
    const badClient = await flotilla(['certs', 'dev', '--client', 'Dev/1'], cwd);
    expect(badClient.code).toBe(2);
    expect(badClient.stderr).toBe('error: invalid --client "Dev/1": expected a device id\n');
    // A newline would reach into openssl's configuration file.
    const badHost = await flotilla(['certs', 'dev', '--host', 'hub\nCN = evil'], cwd);
    expect(badHost.code).toBe(2);
    expect(badHost.stderr).toMatch(/^error: invalid --host "hub\nCN = evil": expected a DNS name or an IP address\n$/);
    expect(existsSync(join(cwd, 'data'))).toBe(false);
  });

  it('prints `flotilla server` flags that start a hub serving https with these certificates', SLOW, async () => {
    const cwd = scratchDir('flotilla-it-certs-cli-');
    const made = await flotilla(['certs', 'dev'], cwd);
    expect(made.code).toBe(0);
    const line = made.stdout.split('\n').find((l) => l.trim().startsWith('flotilla server '));
    expect(line).toBeDefined();
    // The printed paths are relative to where certs dev ran; the hub process runs elsewhere.
    const flags = line!
      .trim()
      .split(/\s+/)
      .slice(2)
      .map((arg) => (arg.startsWith('--') ? arg : resolve(cwd, arg)));
    expect(flags.filter((f) => f.startsWith('--'))).toEqual(['--tls-cert', '--tls-key', '--tls-client-ca']);

    const [mqttsPort, wssPort, httpsPort] = [await freePort(), await freePort(), await freePort()];
    await startHubProcess(undefined, [
      ...flags,
      '--mqtts-port',
      `${mqttsPort}`,
      '--wss-port',
      `${wssPort}`,
      '--https-port',
      `${httpsPort}`,
    ]);
    const ca = readFileSync(join(cwd, 'data/certs/ca.pem'), 'utf8');
    expect(await httpsStatus(`https://localhost:${httpsPort}/healthz`, ca)).toBe(200);
  });

  it('prints `flotilla agent` flags with which a device logs in by its certificate alone (mTLS, anonymous denied)', SLOW, async () => {
    const cwd = scratchDir('flotilla-it-certs-cli-');
    const made = await flotilla(['certs', 'dev', '--client', 'gw-a'], cwd);
    expect(made.code).toBe(0);
    const printed = (command: string) => {
      const line = made.stdout.split('\n').find((l) => l.trim().startsWith(`flotilla ${command} `));
      if (line === undefined) throw new Error(`no "flotilla ${command}" line in:\n${made.stdout}`);
      return line.trim().split(/\s+/).slice(2);
    };
    // Paths made absolute (the processes run elsewhere).
    const absolute = (args: string[]) =>
      args.map((arg, i) => (/^--(tls-|ca$|cert$|key$)/.test(args[i - 1] ?? '') ? resolve(cwd, arg) : arg));
    const [mqttsPort, wssPort, httpsPort] = [await freePort(), await freePort(), await freePort()];
    const hub = await startHubProcess(undefined, [
      ...absolute(printed('server')),
      ...['--mqtts-port', `${mqttsPort}`, '--wss-port', `${wssPort}`, '--https-port', `${httpsPort}`, '--anonymous', 'deny'],
    ]);
    const admin = { authorization: `Bearer ${readFileSync(join(hub.dataDir, 'admin.key'), 'utf8').trim()}` };
    const { token } = (await http(hub.url, 'POST', '/api/v1/tokens', {}, admin)).body as { token: string };
    expect((await http(hub.url, 'POST', '/api/v1/register', { token, deviceId: 'gw-a' })).status).toBe(200);

    // The printed hub URL names the default port; this hub's is another.
    const agentArgs = absolute(printed('agent')).map((arg) => (arg === 'mqtts://localhost:8883' ? `mqtts://localhost:${mqttsPort}` : arg));
    expect(agentArgs).toContain(`mqtts://localhost:${mqttsPort}`);
    // No secret anywhere: the certificate is the credential. No engine either: nothing is deployed.
    const agent = spawnCli('agent gw-a', ['agent', ...agentArgs, '--data-dir', scratchDir('flotilla-it-agent-')], {
      DOCKER_HOST: 'tcp://127.0.0.1:1',
    });
    await waitFor('gw-a online', async () => {
      if (!agent.running) throw new Error(`the agent exited: ${agent.output.slice(-2000)}`);
      const r = await http(hub.url, 'GET', '/api/v1/devices/gw-a', undefined, admin);
      return r.status === 200 && r.body.online === true;
    }).catch((err: Error) => {
      throw new Error(`${err.message}; agent output: ${agent.output.slice(-2000)}`);
    });
  });
});

function httpsStatus(url: string, ca: string): Promise<number> {
  return new Promise((done, reject) => {
    // localhost may resolve to ::1 first; the hub listens on 127.0.0.1 only, and the certificate names both.
    const req = httpsGet(url, { ca, family: 4, timeout: 10_000 }, (res) => {
      res.resume();
      done(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

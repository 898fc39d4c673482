/**
 * A real OpenSSH server (Debian's openssh-server) for tests, self-contained in
 * a temp dir: its own sshd_config, host key, client key pair and
 * authorized_keys, never /etc/ssh. It runs in the foreground (`-D -e`, logs on
 * stderr), inside a network namespace when given one, so it can listen on that
 * namespace's 127.0.0.1:22 where nothing but a tunnel reaches it.
 *
 * Logins are by key only, as root (PermitRootLogin prohibit-password), with
 * StrictModes off because the temp dir's modes are not sshd's business here.
 * sshd refuses to start without its privilege-separation dir /run/sshd, which
 * a machine that never started the system's sshd lacks: it is made if missing.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { NetnsProcess, NetworkNamespace } from './netns.js';
import { waitFor } from './wait.js';

const run = promisify(execFile);

export const SSHD = '/usr/sbin/sshd';

/** A client key pair made for a test: pass `privateKey` to `ssh -i`. */
export interface SshKey {
  dir: string;
  privateKey: string;
  publicKey: string;
}

/** A fresh ed25519 key pair (no passphrase) in a new temp dir the caller removes. */
export async function makeSshKey(): Promise<SshKey> {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-ssh-key-'));
  const privateKey = join(dir, 'id_ed25519');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'flotilla-test', '-f', privateKey]);
  return { dir, privateKey, publicKey: readFileSync(`${privateKey}.pub`, 'utf8').trim() };
}

export interface Sshd {
  proc: NetnsProcess;
  port: number;
  /** The server's host public key line, for a known_hosts entry when a test wants strict checking. */
  hostKey: string;
  close(): Promise<void>;
}

/**
 * sshd on `127.0.0.1:port` inside `ns`, accepting `key` for root; resolves once
 * it logs that it listens.
 */
export async function startSshd(ns: NetworkNamespace, key: SshKey, port = 22): Promise<Sshd> {
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-sshd-'));
  const hostKey = join(dir, 'host_ed25519');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  const authorizedKeys = join(dir, 'authorized_keys');
  writeFileSync(authorizedKeys, `${key.publicKey}\n`, { mode: 0o600 });
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `ListenAddress 127.0.0.1:${port}`,
      `HostKey ${hostKey}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${authorizedKeys}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'LogLevel VERBOSE',
      'Subsystem sftp internal-sftp',
      '',
    ].join('\n'),
  );
  const proc = ns.spawn('sshd', SSHD, ['-D', '-e', '-f', config]);
  const close = async () => {
    await proc.stop(5_000);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(`sshd in ${ns.name} to listen (output: ${proc.output.slice(-500)})`, () => {
      if (!proc.running) throw new Error(`sshd exited: ${proc.output}`);
      return proc.output.includes(`Server listening on 127.0.0.1 port ${port}`);
    });
  } catch (err) {
    await close();
    throw err;
  }
  return { proc, port, hostKey: readFileSync(`${hostKey}.pub`, 'utf8').trim(), close };
}

/** The options every test ssh run needs: this key only, no agent, no known_hosts file, no prompts. */
export function sshClientOptions(key: SshKey): string[] {
  return [
    '-F',
    'none',
    '-i',
    key.privateKey,
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'IdentityAgent=none',
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    'UserKnownHostsFile=/dev/null',
    '-o',
    'BatchMode=yes',
    '-o',
    'LogLevel=ERROR',
  ];
}

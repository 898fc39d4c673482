/**
 * The pieces the remote-access tests stand on, checked on their own: a device
 * in a network namespace whose sshd only that namespace can reach, and a
 * terminal that a test can type into and resize. If these fail, the failures
 * of the tunnel tests mean nothing.
 */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NetworkNamespace } from '../../support/netns.js';
import { Terminal } from '../../support/pty.js';
import { makeSshKey, type Sshd, type SshKey, sshClientOptions, startSshd } from '../../support/sshd.js';
import { waitFor } from '../../support/wait.js';
import { describeRemote } from '../support/remote-gate.js';

function connectError(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port, timeout: 3_000 });
    socket.on('connect', () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.on('timeout', () => {
      socket.destroy();
      resolve('ETIMEDOUT');
    });
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

describeRemote(
  'fixtures: a device in a network namespace, an sshd only it reaches, a terminal',
  () => {
    let ns: NetworkNamespace;
    let key: SshKey;
    let sshd: Sshd;

    beforeAll(async () => {
      ns = await NetworkNamespace.create('flfx');
      key = await makeSshKey();
      sshd = await startSshd(ns, key);
    });

    afterAll(async () => {
      await sshd?.close();
      await ns?.close();
      if (key) rmSync(key.dir, { recursive: true, force: true });
    });

    it('logs in over ssh from inside the namespace, where the command sees only the namespace network', async () => {
      const result = await ns.run('ssh', [...sshClientOptions(key), '-p', '22', 'root@127.0.0.1', 'echo in-$((6*7)); ip -4 -o addr show']);
      expect(result.stderr).toBe('');
      expect(result.stdout).toContain('in-42');
      expect(result.stdout).toContain(`inet ${ns.address}/30`);
      expect(result.code).toBe(0);
    });

    it('leaves the host no way to the sshd: its address on the link refuses port 22', async () => {
      expect(await connectError(ns.address, 22)).toBe('ECONNREFUSED');
      // The namespace itself answers on the link (its loopback sshd is simply not there).
      const probe = await ns.run('sh', ['-c', `ip -4 -o addr show; cat /proc/net/tcp | awk 'NR>1 && $4=="0A" {print $2}'`]);
      expect(probe.stdout).toContain(`inet ${ns.address}/30`);
      expect(probe.stdout).toContain('0100007F:0016'); // 127.0.0.1:22, listening, inside only
    });

    it('runs a command in a terminal that reports its size, a resize, and ends on Ctrl-D', async () => {
      const terminal = await Terminal.start('sh', { cols: 80, rows: 24, env: { PS1: '$ ' } });
      try {
        await terminal.type('stty size');
        await terminal.waitForScreen(/^24 80$/m);
        await terminal.resize(100, 30);
        // tmux hands a pane's new size to its pty from its own loop (on a resize timer), so a command typed at once may still see the old one.
        await waitFor(
          'stty size to say 30 100',
          async () => {
            await terminal.type('stty size');
            return terminal.waitForScreen(/^30 100$/m, 1_000).catch(() => undefined);
          },
          { timeoutMs: 10_000 },
        );
        await terminal.press('C-d');
        expect(await terminal.waitForExit()).toBe(0);
      } finally {
        await terminal.close();
      }
    });

    it('removes the namespace and its link on close', async () => {
      const other = await NetworkNamespace.create('flfy');
      const sleeper = other.spawn('sleep', 'sleep', ['600']);
      await other.close();
      expect(sleeper.running).toBe(false);
      expect(execFileSync('ip', ['netns', 'list']).toString()).not.toContain(other.name);
      expect(execFileSync('ip', ['link', 'show']).toString()).not.toContain(other.hostLink);
    });
  },
  { docker: false },
);

/**
 * What an operator sees when `flotilla agent` (or `flotilla agent register`)
 * cannot work on this device: one line on stderr naming the fix, a non-zero
 * exit, and nothing written. Real processes: the CLI itself, as root or as
 * `nobody` (runuser), a unix socket this test listens on where an engine's
 * would be, and a full tmpfs for the full disk.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startAgent } from '../../agent/agent.js';
import { AGENT_PROTOCOL_VERSION } from '../../shared/protocol-version.js';
import { Cleanup } from '../support/cleanup.js';
import { appSpec } from '../support/fixtures.js';
import { http } from '../support/http.js';
import { startTestHub } from '../support/hub.js';
import { LogCapture } from '../support/logs.js';
import { type RunResult, runCli } from '../support/processes.js';
import { scratchDir } from '../support/scratch.js';
import { MemoryRuntime } from '../support/sim/memory-runtime.js';
import { waitFor } from '../support/wait.js';

const SLOW = { timeout: 60_000 };
const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;
/** Running as another user and mounting a tmpfs need root; CI runs as root, so there a missing root is a failure. */
const needsRoot = !isRoot && process.env.CI !== 'true';
if (needsRoot) console.warn('agent-startup-errors: not root, skipping the cases run as nobody or on a tmpfs');

/** `flotilla ARGS…` as root, or as nobody; never throws on a non-zero exit. A check that did not stop the agent leaves it running: killed at 20 s, that is a failure, not a hang. */
function flotilla(args: string[], env: NodeJS.ProcessEnv, asNobody = false): Promise<RunResult> {
  return runCli(args, { env: { NO_COLOR: '1', ...env }, timeoutMs: 20_000, ...(asNobody ? { asUser: 'nobody' } : {}) });
}

function agent(dataDir: string, env: NodeJS.ProcessEnv, asNobody = false): Promise<RunResult> {
  // Port 1 on loopback: the hub is never reached, so an agent the checks let through would run until killed.
  return flotilla(['agent', '--device-id', 'dev-start', '--hub-url', 'mqtt://127.0.0.1:1', '--data-dir', dataDir], env, asNobody);
}

/** Exactly one line on stderr, and nothing on stdout (not even a log line). */
function expectOneLine(result: RunResult, line: string): void {
  expect(result, result.stderr).toMatchObject({ code: 1, stdout: '', stderr: `error: ${line}\n` });
}

describe('an agent that cannot start', SLOW, () => {
  const cleanup = new Cleanup();
  let dir: string;

  /** A unix socket with this mode where an engine's would be (what is behind it does not matter to the checks). */
  async function socket(mode: number): Promise<string> {
    const path = join(dir, `engine-${mode.toString(8)}.sock`);
    const server: Server = createServer((conn) => conn.destroy());
    await new Promise<void>((resolve) => server.listen(path, resolve));
    cleanup.add('socket', () => new Promise<void>((resolve) => server.close(() => resolve())));
    chmodSync(path, mode);
    return `unix://${path}`;
  }

  beforeEach(() => {
    dir = scratchDir('flotilla-it-startup-');
    // nobody must reach the sockets and dirs made in here.
    chmodSync(dir, 0o755);
  });
  afterEach(() => cleanup.run());

  it('without a Docker Engine: names the socket and how to get one, and writes nothing', async () => {
    const missing = join(dir, 'run', 'docker.sock');
    const dataDir = join(dir, 'data');
    const result = await agent(dataDir, { DOCKER_HOST: `unix://${missing}` });
    expectOneLine(
      result,
      `no Docker Engine at ${missing} (no such socket): install one (apt-get install docker.io), start it (systemctl start docker), or point DOCKER_HOST at its socket (DOCKER_HOST=unix:///path/to/docker.sock)`,
    );
    expect(existsSync(dataDir)).toBe(false);
  });

  it.skipIf(needsRoot)("as a user who may not use the engine's socket: names the socket and the docker group", async () => {
    const host = await socket(0o600);
    const dataDir = join(dir, 'data');
    const result = await agent(dataDir, { DOCKER_HOST: host }, true);
    expectOneLine(
      result,
      `user nobody may not use the Docker Engine's socket ${host.slice('unix://'.length)}: run the agent as root, or add nobody to the docker group (usermod -aG docker nobody) and start it again`,
    );
    expect(existsSync(dataDir)).toBe(false);
  });

  it.skipIf(needsRoot)('with a data dir it may not write (missing and uncreatable, or mode 000): names the dir and the fix', async () => {
    const host = await socket(0o666);
    const fix = (d: string) =>
      `user nobody cannot write the agent's data dir ${d}: run the agent as the dir's owner or root, give it to nobody (mkdir -p ${d} && chown -R nobody ${d}), or choose another with --data-dir`;

    // Under a dir of root's: nobody cannot create it.
    const rootsDir = join(dir, 'roots');
    mkdirSync(rootsDir, { mode: 0o755 });
    const uncreatable = join(rootsDir, 'agent');
    expectOneLine(await agent(uncreatable, { DOCKER_HOST: host }, true), fix(uncreatable));
    expect(readdirSync(rootsDir)).toEqual([]);

    // There, but closed to everyone (the agent's config would be read from it first).
    const closed = join(dir, 'closed');
    mkdirSync(closed);
    chownSync(closed, NOBODY, NOBODY);
    chmodSync(closed, 0o000);
    expectOneLine(await agent(closed, { DOCKER_HOST: host }, true), fix(closed));
    chmodSync(closed, 0o700);
    expect(readdirSync(closed)).toEqual([]);
  });

  it.skipIf(needsRoot)(
    "with a state file in the data dir it may not open: the same line, and the start's other files removed",
    async () => {
      const host = await socket(0o666);
      const dataDir = join(dir, 'data');
      mkdirSync(dataDir);
      chownSync(dataDir, NOBODY, NOBODY);
      // An outbox left by an agent once run as root: opened after agent.db, which this start creates.
      writeFileSync(join(dataDir, 'outbox.db'), '', { mode: 0o600 });
      const result = await agent(dataDir, { DOCKER_HOST: host }, true);
      // Found while opening the state, after the agent began to log (stdout): stderr still has the one line.
      expect(result, result.stderr).toMatchObject({
        code: 1,
        stderr: `error: user nobody cannot write the agent's data dir ${dataDir}: run the agent as the dir's owner or root, give it to nobody (mkdir -p ${dataDir} && chown -R nobody ${dataDir}), or choose another with --data-dir\n`,
      });
      expect(result.stdout).not.toContain('agent started');
      // agent.db and its WAL files, made by this start, are gone again.
      expect(readdirSync(dataDir)).toEqual(['outbox.db']);
    },
  );

  it.skipIf(needsRoot)('on a full disk: names the dir, and leaves nothing on it', async () => {
    const host = await socket(0o666);
    const mount = join(dir, 'full');
    mkdirSync(mount);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mount]);
    cleanup.add('tmpfs', () => execFileSync('umount', [mount]));
    // Fill it: the last write fails with ENOSPC once the 64 KiB are taken.
    try {
      writeFileSync(join(mount, 'fill'), Buffer.alloc(128 * 1024));
    } catch (err) {
      expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    }
    const dataDir = join(mount, 'agent');
    expectOneLine(
      await agent(dataDir, { DOCKER_HOST: host }),
      `no space left for the agent's state in ${dataDir}: free some on that file system (df -h ${dataDir}), or choose another data dir with --data-dir`,
    );
    expect(readdirSync(mount)).toEqual(['fill']);
  });

  it('agent register without a Docker Engine: the same line, before the registration token is spent', async () => {
    const hub = await startTestHub();
    cleanup.add('hub', () => hub.close());
    const created = await http(hub.httpUrl, 'POST', '/api/v1/tokens', { maxUses: 1 });
    expect(created.status).toBe(200);
    const token = created.body.token as string;
    const dataDir = join(dir, 'data');
    const register = (env: NodeJS.ProcessEnv) =>
      flotilla(['agent', 'register', '--hub', hub.httpUrl, '--token', token, '--device-id', 'dev-reg', '--data-dir', dataDir], env);

    const missing = join(dir, 'docker.sock');
    expectOneLine(
      await register({ DOCKER_HOST: `unix://${missing}` }),
      `no Docker Engine at ${missing} (no such socket): install one (apt-get install docker.io), start it (systemctl start docker), or point DOCKER_HOST at its socket (DOCKER_HOST=unix:///path/to/docker.sock)`,
    );
    expect(existsSync(dataDir)).toBe(false);

    // The single-use token still works once the engine is there.
    const registered = await register({ DOCKER_HOST: await socket(0o660) });
    expect(registered.code, registered.stderr).toBe(0);
    expect(registered.stdout).toContain('device/dev-reg registered');
  });
});

describe('an agent whose disk fills after it started', SLOW, () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it.skipIf(needsRoot)('says where the space ran out when it cannot save a new desired state, and what a restart would do', async () => {
    const hub = await startTestHub();
    cleanup.add('hub', () => hub.close());
    const mount = scratchDir('flotilla-it-fills-');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mount]);
    cleanup.add('tmpfs', () => execFileSync('umount', [mount]));
    const dataDir = join(mount, 'agent');
    const logs = new LogCapture('info');
    const agent = await startAgent(
      {
        deviceId: 'dev-fills',
        hubUrl: hub.mqttUrl,
        dataDir,
        outboxPath: 'memory',
        // Its copy cannot reach the full data dir at the stop, so the ledger stays in RAM: a scratch dir, removed after.
        logLedgerDir: scratchDir('flotilla-it-fills-ledger-'),
        labels: { site: 'lab' },
        stateIntervalMs: 50,
      },
      { runtime: new MemoryRuntime(), logger: logs.logger },
    );
    cleanup.add('agent', () => agent.close());
    await waitFor('the agent to connect', () => agent.link.connected || undefined);
    // The line an agent starts with says what it is.
    expect(logs.matching('agent started')[0]).toMatchObject({
      agentVersion: expect.stringMatching(/^\d+\.\d+\.\d+/),
      nodeVersion: process.versions.node,
      arch: expect.any(String),
      protocol: AGENT_PROTOCOL_VERSION,
    });

    try {
      writeFileSync(join(mount, 'fill'), Buffer.alloc(4 * 1024 * 1024));
    } catch (err) {
      expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    }
    expect((await http(hub.httpUrl, 'POST', '/api/v1/apps', appSpec('lab-app', { site: 'lab' }))).status).toBe(200);

    const saveFailed = (r: { msg: string }) => r.msg.startsWith(`no space left for the agent's state in ${dataDir}:`);
    const line = await waitFor('the agent to say it could not save the desired state', () => logs.records.find(saveFailed));
    expect(line).toMatchObject({ level: 50, revision: expect.any(Number) });
    expect(line.msg).toBe(
      `no space left for the agent's state in ${dataDir}: free some on that file system (df -h ${dataDir}), or choose another data dir with --data-dir. The agent acts on revision ${line.revision} without saving it: restarted before it is saved, it goes back to the one saved before`,
    );
    expect(logs.matching('handling desired state failed')).toEqual([]);
  });
});

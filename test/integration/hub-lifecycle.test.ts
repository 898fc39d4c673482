/**
 * Starting and stopping the hub as an operator (or a supervisor restarting
 * it) experiences it: bad configuration is refused by name, a stop releases
 * every port and disconnects every client, and a start that fails half-way
 * leaves nothing behind.
 */
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHub } from '../../broker/hub.js';
import { Cleanup } from '../support/cleanup.js';
import { startTestHub } from '../support/hub.js';
import { closeClient, connectClient } from '../support/mqtt-client.js';
import { freePort } from '../support/ports.js';
import { REPO_ROOT } from '../support/processes.js';
import { scratchDir } from '../support/scratch.js';
import { waitFor } from '../support/wait.js';

const execFileAsync = promisify(execFile);

/** Runs a TypeScript file under node + tsx; never throws on a non-zero exit. */
async function runNode(args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, ['--import', 'tsx', ...args], { cwd: REPO_ROOT, timeout: 20_000 });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { stdout: e.stdout ?? '', stderr: e.stderr ?? '', code: typeof e.code === 'number' ? e.code : 1 };
  }
}

describe('hub lifecycle', () => {
  const cleanup = new Cleanup();
  let dataDir: string;

  beforeEach(() => {
    dataDir = scratchDir('flotilla-it-life-');
  });

  afterEach(() => cleanup.run());

  it('refuses an invalid configuration, naming the key', async () => {
    await expect(startHub({ dataDir, host: '127.0.0.1', mqttPort: 70_000, logLevel: 'silent' })).rejects.toThrow(
      /invalid hub configuration:\nmqttPort: must be <= 65535/,
    );
    await expect(startHub({ dataDir, logLevel: 'chatty' })).rejects.toThrow(/logLevel: must be one of/);
    await expect(startHub({ dataDir, logLevel: 'silent', colour: 'blue' } as never)).rejects.toThrow(/colour: is not a known field/);
    await expect(startHub({ dataDir, logLevel: 'silent', telemetryMaxAgeMs: 1000 })).rejects.toThrow(/telemetryMaxAgeMs: must be >= 60000/);
  });

  it('refuses a retention flag it cannot read, naming the flag', async () => {
    const age = await runNode(['cli/flotilla.js', 'server', '--data-dir', dataDir, '--telemetry-max-age', 'a week']);
    expect(age.code).toBe(2);
    expect(age.stderr).toMatch(/--telemetry-max-age <duration>' argument 'a week' is invalid\. expected a duration such as .* or 7d/);
    const size = await runNode(['cli/flotilla.js', 'server', '--data-dir', dataDir, '--telemetry-max-size', 'huge']);
    expect(size.code).toBe(2);
    expect(size.stderr).toMatch(/--telemetry-max-size <size>' argument 'huge' is invalid\. invalid size "huge"/);
  });

  it('disconnects its clients and releases its ports on close, so it can start again on them', async () => {
    const hub = await startTestHub({ dataDir });
    cleanup.add('hub', () => hub.close());
    const { mqtt, ws, http } = hub.hub.ports;
    const tcpClient = await connectClient(hub.mqttUrl);
    cleanup.add('tcp client', () => closeClient(tcpClient));
    const wsClient = await connectClient(hub.wsUrl);
    cleanup.add('ws client', () => closeClient(wsClient));

    await hub.close();
    await waitFor('both clients disconnected', () => !tcpClient.connected && !wsClient.connected);
    await expect(fetch(`${hub.httpUrl}/healthz`)).rejects.toThrow();

    const again = await startHub({ dataDir, host: '127.0.0.1', mqttPort: mqtt, wsPort: ws, httpPort: http, logLevel: 'silent' });
    cleanup.add('hub again', () => again.close());
    expect(again.ports).toEqual({ mqtt, ws, http });
    expect((await fetch(`http://127.0.0.1:${http}/healthz`)).status).toBe(200);
  });

  // The HTTP listener is bound after the broker and dispatcher; the WebSocket listener right after
  // the MQTT one, inside startBroker. Either failing must reject the start and release what was
  // already bound, so a supervisor can retry. Run in a child process: a start that crashes the
  // process instead of rejecting must fail this test, not the test runner.
  it.each(['httpPort', 'wsPort'] as const)('rejects and releases the MQTT port when %s cannot be bound', async (blocked) => {
    const blockedPort = await freePort();
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(blockedPort, '127.0.0.1', resolve));
    cleanup.add('blocker', () => new Promise((resolve) => blocker.close(resolve)));
    const mqttPort = await freePort();
    const config = { dataDir, host: '127.0.0.1', mqttPort, wsPort: 0, httpPort: 0, [blocked]: blockedPort };

    const { stdout, stderr, code } = await runNode([join(REPO_ROOT, 'test/support/hub-start-child.ts'), JSON.stringify(config)]);

    const lines = stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    // A failed start closes what it had opened (broker/hub.ts's Closer): the retry binds the same MQTT port.
    expect({ lines, stderr: stderr.split('\n').slice(0, 3).join('\n'), code }).toEqual({
      lines: [
        {
          step: 'first',
          ok: false,
          error: expect.stringMatching(
            new RegExp(`^port ${blockedPort} on 127\\.0\\.0\\.1 for .* \\(--(http|ws)-port\\) is already in use`),
          ),
        },
        { step: 'retry', ok: true, mqttPort },
      ],
      stderr: '',
      code: 0,
    });
  });
});

/**
 * Exec and port-forward into app containers on a real Docker Engine, driven
 * by a test that plays the hub over a real broker against a real agent.
 * The app containers are started with the docker CLI under Flotilla's labels
 * (the agent has no desired state, so it leaves them alone and finds them as
 * it finds its own); what runs in them is checked with `docker top`.
 */
import { randomBytes } from 'node:crypto';
import Dockerode from 'dockerode';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { DockerRuntime } from '../../../agent/runtime/docker-runtime.js';
import { CHANNEL, FRAME, type SessionRequest } from '../../../shared/remote/index.js';
import { docker, removeContainersAndVolumes } from '../../e2e/support/docker-cli.js';
import { describeDocker } from '../../e2e/support/engine.js';
import { ensureTestImages } from '../../e2e/support/images.js';
import { Cleanup } from '../../support/cleanup.js';
import { startFaultProxy } from '../../support/fault-proxy.js';
import { LogCapture } from '../../support/logs.js';
import { waitFor } from '../../support/wait.js';
import { type HubDouble, launchAgent, openedResult, startHubDouble } from './agent-hub-double.js';

const DEVICE = `dev-exec-${randomBytes(3).toString('hex')}`;
const exec = (command: string[], options: Partial<Extract<SessionRequest, { kind: 'exec' }>> = {}): SessionRequest => ({
  kind: 'exec',
  app: 'shop',
  command,
  tty: false,
  stdin: false,
  ...options,
});

/** The processes `docker top` lists in a container, as command lines. */
async function processes(container: string): Promise<string[]> {
  const out = await docker('top', container, '-o', 'pid,args');
  return out
    .split('\n')
    .slice(1)
    .map((line) => line.trim().replace(/^\d+\s+/, ''));
}

describeDocker('agent exec and port-forward into app containers (real Docker Engine)', () => {
  const cleanup = new Cleanup();
  let hub: HubDouble;
  let logs: LogCapture;
  let image: string;

  /** Starts a container of `app` as the agent would have, under the device's labels. */
  async function runApp(app: string, container: string): Promise<string> {
    const name = `${DEVICE}-${app}_${container}`;
    await docker(
      'run',
      '-d',
      '--name',
      name,
      ...['flotilla.managed=true', `flotilla.device=${DEVICE}`, `flotilla.app=${app}`, `flotilla.container=${container}`]
        .concat(['flotilla.app-revision=1'])
        .flatMap((label) => ['--label', label]),
      image,
    );
    return name;
  }

  beforeAll(async () => {
    image = (await ensureTestImages()).v1;
    await docker('pull', '-q', image);
    await runApp('shop', 'web');
    await runApp('duo', 'front');
    await runApp('duo', 'back');
  });
  afterAll(() => removeContainersAndVolumes(`flotilla.device=${DEVICE}`));

  beforeEach(async () => {
    hub = await startHubDouble(cleanup);
    logs = new LogCapture('info');
  });
  afterEach(() => cleanup.run());

  async function agent(hubUrl = hub.url): Promise<void> {
    const runtime = new DockerRuntime(new Dockerode(), undefined, { deviceId: DEVICE });
    await launchAgent(cleanup, { deviceId: DEVICE, hubUrl, runtime, logs });
    await hub.deviceReady(DEVICE);
  }

  it('runs a command in the app container: stdin in, stdout and stderr apart, its exit code last', async () => {
    await agent();
    const { reply, peer } = await hub.open(DEVICE, exec(['sh', '-c', 'cat; echo "to stderr" >&2; exit 7'], { stdin: true }));
    expect(openedResult(reply)).toEqual({ sessionId: peer.sessionId, container: 'shop_web' });
    peer.stdin('hello from stdin\n');
    peer.stdin('second line\n');
    peer.send({ type: FRAME.eof, channel: CHANNEL.stdio });
    expect(await peer.ended()).toMatchObject({ type: FRAME.exit, channel: CHANNEL.session, code: 7 });
    expect(peer.text(CHANNEL.stdio)).toBe('hello from stdin\nsecond line\n');
    expect(peer.text(CHANNEL.stderr)).toBe('to stderr\n');
    expect(peer.broken).toBeUndefined();
    await logs.waitFor('session ended', (r) => r.sessionId === peer.sessionId && r.exitCode === 7 && r.kind === 'exec');
  });

  it('streams a large output whole and in order, stdout and stderr interleaved', async () => {
    await agent();
    const script = 'i=0; while [ $i -lt 20000 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done';
    const { peer } = await hub.open(DEVICE, exec(['sh', '-c', script]));
    expect(await peer.ended(60_000)).toMatchObject({ type: FRAME.exit, code: 0 });
    const expected = (stream: string) => Array.from({ length: 20000 }, (_, i) => `${stream} ${i}\n`).join('');
    expect(peer.text(CHANNEL.stdio)).toBe(expected('out'));
    expect(peer.text(CHANNEL.stderr)).toBe(expected('err'));
  });

  it('gives a TTY exec its size, resizes it, and merges its output', async () => {
    await agent();
    const { peer } = await hub.open(DEVICE, exec(['sh'], { tty: true, stdin: true, rows: 30, cols: 100 }));
    peer.stdin('stty size\r');
    await peer.waitForText('30 100');
    // A window dragged: a burst of sizes, the last one wins (resizes are requests to the engine that must not overtake each other).
    for (let step = 1; step <= 10; step++) peer.send({ type: FRAME.resize, channel: CHANNEL.session, rows: 30 + step, cols: 100 + step });
    peer.send({ type: FRAME.resize, channel: CHANNEL.session, rows: 50, cols: 132 });
    // Typed right after the resize, once: the resize must have taken effect before the shell reads it.
    peer.stdin('stty size\r');
    await peer.waitForText('50 132');
    peer.stdin('echo oops >&2; exit 4\r');
    expect(await peer.ended()).toMatchObject({ type: FRAME.exit, code: 4 });
    expect(peer.text()).toContain('oops');
    expect(peer.bytes(CHANNEL.stderr).length).toBe(0);
  });

  it('forwards a connection to a port of the app container', async () => {
    await agent();
    const { reply, peer } = await hub.open(DEVICE, { kind: 'forward', app: 'shop', port: 80 });
    expect(openedResult(reply).container).toBe('shop_web');
    peer.send({ type: FRAME.open, channel: 1 });
    await peer.waitFor('OPENED 1', () => peer.frames.some((f) => f.type === FRAME.opened && f.channel === 1));
    peer.send({ type: FRAME.data, channel: 1, data: Buffer.from('GET / HTTP/1.0\r\nHost: x\r\n\r\n') });
    await peer.waitFor('the answer and the server closing', () =>
      peer.frames.some((f) => (f.type === FRAME.eof || f.type === FRAME.close) && f.channel === 1),
    );
    expect(peer.text(1)).toMatch(/^HTTP\/1\.[01] 200/);
    expect(peer.text(1).trimEnd().endsWith('v1')).toBe(true);
  });

  it('answers not_found, naming the containers, when the target is ambiguous or missing', async () => {
    await agent();
    const several = await hub.open(DEVICE, { ...exec(['true']), app: 'duo' } as SessionRequest);
    expect(several.reply).toMatchObject({ ok: false, error: { code: 'not_found' } });
    expect(several.reply.error?.message).toContain('back, front');
    const named = await hub.open(DEVICE, { ...exec(['true']), app: 'duo', container: 'side' } as SessionRequest);
    expect(named.reply).toMatchObject({ ok: false, error: { code: 'not_found', message: expect.stringContaining('side') } });
    const none = await hub.open(DEVICE, { ...exec(['true']), app: 'nowhere' } as SessionRequest);
    expect(none.reply).toMatchObject({ ok: false, error: { code: 'not_found', message: expect.stringContaining('nowhere') } });
    const chosen = await hub.open(DEVICE, { ...exec(['sh', '-c', 'exit 2']), app: 'duo', container: 'back' } as SessionRequest);
    expect(openedResult(chosen.reply).container).toBe('duo_back');
    expect(await chosen.peer.ended()).toMatchObject({ type: FRAME.exit, code: 2 });
  });

  it('kills the exec when the link to the hub drops: nothing is left running in the container', async () => {
    const proxy = await startFaultProxy({ targetPort: hub.port });
    cleanup.add('proxy', () => proxy.close());
    await agent(proxy.url);
    const container = `${DEVICE}-shop_web`;
    const { peer } = await hub.open(DEVICE, exec(['sh', '-c', 'echo started; exec sleep 7777']));
    await peer.waitForText('started');
    expect(await processes(container)).toContain('sleep 7777');
    proxy.down();
    await waitFor('sleep 7777 gone from the container', async () => !(await processes(container)).includes('sleep 7777'), {
      timeoutMs: 10_000,
    });
    await logs.waitFor('session ended', (r) => r.sessionId === peer.sessionId && r.outcome === 'link_lost');
    proxy.up();
  });

  it('kills a TTY exec when the hub closes the session', async () => {
    await agent();
    const container = `${DEVICE}-shop_web`;
    const { peer } = await hub.open(DEVICE, exec(['sh', '-c', 'echo started; exec sleep 8888'], { tty: true, stdin: true }));
    await peer.waitForText('started');
    expect(await processes(container)).toContain('sleep 8888');
    await hub.command(DEVICE, {
      id: `close-${peer.sessionId}`,
      type: 'session.close',
      args: { sessionId: peer.sessionId, reason: 'opener left' },
      expiresAt: new Date(Date.now() + 30_000).toISOString(),
    });
    await waitFor('sleep 8888 gone from the container', async () => !(await processes(container)).includes('sleep 8888'), {
      timeoutMs: 10_000,
    });
    expect(peer.ending()).toBeUndefined();
  });
});

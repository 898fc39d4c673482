/**
 * Remote sessions' side of the Docker runtime: which container of an app a
 * session reaches, and `docker exec` with its streams.
 *
 * An exec's output comes on the hijacked connection: raw under a TTY,
 * multiplexed otherwise (docker-stream-demuxer.ts, with backpressure). Its
 * exit code is only known from inspecting the exec once the output ended.
 */
import { readFileSync } from 'node:fs';
import { type Duplex, PassThrough, Writable } from 'node:stream';
import type Dockerode from 'dockerode';
import { DockerStreamDemuxer } from './docker-stream-demuxer.js';
import { RuntimeError, statusCodeOf, toRuntimeError } from './errors.js';
import { LABEL_APP, LABEL_APP_REVISION, LABEL_CONTAINER } from './labels.js';
import type { ExecOptions, RemoteProcess, SessionTarget } from './runtime.js';

/** How long to wait for the engine to record an exec's exit code after its output ended. */
const EXIT_CODE_WAIT_MS = 2_000;
/** Time a killed exec's process gets between SIGHUP and SIGKILL. */
const KILL_GRACE_MS = 1_000;

export async function findSessionTarget(
  docker: Dockerode,
  labelFilter: readonly string[],
  app: string,
  container: string | undefined,
): Promise<SessionTarget> {
  let listed: Dockerode.ContainerInfo[];
  try {
    listed = await docker.listContainers({ filters: { label: [...labelFilter, `${LABEL_APP}=${app}`], status: ['running'] } });
  } catch (err) {
    throw toRuntimeError(err, `list the containers of app ${app}`);
  }
  // During an update the old version may still run beside the new one under the same labels: the newer one is the app.
  const newest = new Map<string, Dockerode.ContainerInfo>();
  for (const summary of listed) {
    const name = summary.Labels?.[LABEL_CONTAINER];
    if (!name) continue;
    const held = newest.get(name);
    if (!held || revisionOf(summary) > revisionOf(held)) newest.set(name, summary);
  }
  const names = [...newest.keys()].sort();
  let chosen: Dockerode.ContainerInfo | undefined;
  if (container !== undefined) {
    chosen = newest.get(container);
    if (!chosen) {
      throw new RuntimeError(
        'not_found',
        names.length === 0
          ? `app ${app} runs no container on this device`
          : `app ${app} runs no container named ${container} (it runs ${names.join(', ')})`,
      );
    }
  } else if (names.length === 1) {
    chosen = newest.get(names[0]!);
  } else {
    throw new RuntimeError(
      'not_found',
      names.length === 0
        ? `app ${app} runs no container on this device`
        : `app ${app} runs several containers (${names.join(', ')}): name one as ${app}/CONTAINER`,
    );
  }
  return inspectTarget(docker, chosen!.Id, app);
}

function revisionOf(summary: Dockerode.ContainerInfo): number {
  const revision = Number(summary.Labels?.[LABEL_APP_REVISION]);
  return Number.isFinite(revision) ? revision : 0;
}

async function inspectTarget(docker: Dockerode, id: string, app: string): Promise<SessionTarget> {
  let details: Dockerode.ContainerInspectInfo;
  try {
    details = await docker.getContainer(id).inspect();
  } catch (err) {
    if (statusCodeOf(err) === 404) throw new RuntimeError('not_found', `the container of app ${app} went away`, { statusCode: 404 });
    throw toRuntimeError(err, `inspect container ${id.slice(0, 12)}`);
  }
  const networks = Object.values(details.NetworkSettings?.Networks ?? {});
  const ipAddress = networks.map((n) => n.IPAddress).find((address) => address !== undefined && address !== '');
  return {
    id: details.Id,
    dockerName: details.Name.replace(/^\//, ''),
    app,
    container: details.Config.Labels?.[LABEL_CONTAINER] ?? '',
    networkMode: details.HostConfig.NetworkMode ?? 'default',
    ...(ipAddress ? { ipAddress } : {}),
  };
}

export async function dockerExec(docker: Dockerode, target: SessionTarget, options: ExecOptions): Promise<RemoteProcess> {
  const context = `exec in container ${target.dockerName}`;
  let exec: Dockerode.Exec;
  let socket: Duplex;
  try {
    exec = await docker.getContainer(target.id).exec({
      Cmd: options.command,
      AttachStdin: options.stdin,
      AttachStdout: true,
      AttachStderr: true,
      Tty: options.tty,
    });
    socket = await exec.start({ hijack: true, stdin: options.stdin, Tty: options.tty });
  } catch (err) {
    throw toRuntimeError(err, context);
  }
  const process = new DockerExecProcess(exec, socket, target, options);
  // Before the session is answered, so the command's first look at its terminal sees the opener's size.
  if (options.tty && options.rows !== undefined && options.cols !== undefined) {
    await process.resize(options.rows, options.cols).catch(() => {});
  }
  return process;
}

class DockerExecProcess implements RemoteProcess {
  readonly stdout;
  readonly stderr;
  readonly stdin: Writable;
  private killed = false;

  constructor(
    private readonly exec: Dockerode.Exec,
    private readonly socket: Duplex,
    private readonly target: SessionTarget,
    options: ExecOptions,
  ) {
    // A socket error (the engine went away) ends the output; the exit code then says what it can.
    socket.on('error', () => socket.destroy());
    if (options.tty) {
      this.stdout = socket;
      this.stderr = undefined;
    } else {
      const demuxer = new DockerStreamDemuxer();
      socket.pipe(demuxer);
      socket.on('close', () => {
        if (!demuxer.writableFinished) demuxer.end();
      });
      this.stdout = demuxer.stdout;
      this.stderr = demuxer.stderr;
    }
    this.stdin = options.stdin ? stdinOf(socket) : discard();
  }

  async resize(rows: number, cols: number): Promise<void> {
    try {
      await this.exec.resize({ h: rows, w: cols });
    } catch (err) {
      throw toRuntimeError(err, `resize exec in container ${this.target.dockerName}`);
    }
  }

  async exited(): Promise<number> {
    const deadline = Date.now() + EXIT_CODE_WAIT_MS;
    for (;;) {
      const info = await this.exec.inspect().catch((err: unknown) => {
        throw toRuntimeError(err, `inspect exec in container ${this.target.dockerName}`);
      });
      if (!info.Running && typeof info.ExitCode === 'number') return info.ExitCode;
      // The output can end a moment before the engine records the exit.
      if (Date.now() > deadline) {
        throw new RuntimeError('engine', `exec in container ${this.target.dockerName} ended without an exit code`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  kill(): void {
    if (this.killed) return;
    this.killed = true;
    this.socket.destroy();
    // The engine has no API to kill an exec: closing its connection ends a
    // TTY exec (the engine closes the pty, the shell gets SIGHUP) but a
    // non-TTY process runs on until it writes to its closed output. So the
    // process itself is signalled, by the host pid the engine reports. When
    // the agent runs in a container without the host's pid namespace, that
    // pid is not the process (not visible, or another one): killExecPid
    // checks that the pid's cgroup is the container's before it signals, and
    // otherwise leaves it to the closed connection.
    this.exec.inspect().then(
      (info) => {
        if (info.Running && typeof info.Pid === 'number' && info.Pid > 0) killExecPid(info.Pid, this.target.id);
      },
      () => {},
    );
  }
}

/** Writes into the exec's stdin; end() half-closes the connection, which the engine passes on as EOF. */
function stdinOf(socket: Duplex): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (socket.destroyed || socket.writableEnded) return callback();
      socket.write(chunk, () => callback());
    },
    final(callback) {
      if (!socket.destroyed && !socket.writableEnded) socket.end();
      callback();
    },
  });
}

/** A stdin that was never attached: what is written goes nowhere. */
function discard(): Writable {
  const sink = new PassThrough();
  sink.resume();
  return sink;
}

function killExecPid(pid: number, containerId: string): void {
  if (!inContainer(pid, containerId)) return;
  signal(pid, 'SIGHUP');
  setTimeout(() => {
    if (inContainer(pid, containerId)) signal(pid, 'SIGKILL');
  }, KILL_GRACE_MS).unref();
}

/** Whether `pid`, as this process sees it, runs in the container (its cgroup path names the container id). */
function inContainer(pid: number, containerId: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(containerId);
  } catch {
    return false;
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Gone already.
  }
}

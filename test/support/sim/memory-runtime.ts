/**
 * An in-memory `ContainerRuntime` for the fleet simulator: no engine, no
 * processes, just the state machine the agent observes through the seam.
 *
 * Faithful where the agent's decisions depend on it (docker-runtime.ts is the
 * reference):
 * - Names are unique: creating or renaming onto a taken name is a `conflict`
 *   (Docker's 409); a missing container or image is `not_found` (404).
 * - Labels come from `toCreateOptions`, so `listManaged` filters on
 *   `flotilla.managed` and, with `deviceId`, on `flotilla.device` exactly as the
 *   real runtime does, and several agents may share one MemoryRuntime.
 * - States go created → running → exited; start, stop and remove are as
 *   idempotent as they are against a real engine, and removing a running
 *   container is a conflict (the real runtime removes with force: false).
 * - An image used by any container cannot be removed (409), as without force.
 * - `watch` listeners hear about every state change, asynchronously, as an
 *   event stream would deliver them.
 *
 * Not simulated: restart policies (a crashed container stays exited), the
 * agent's own http/tcp health probes (containers have no address, so such a
 * gate fails after its healthTimeout), networks and volumes. Logs are only
 * what a test writes with `writeLog` (the last 1000 lines per container).
 */
import { randomBytes } from 'node:crypto';
import { toCreateOptions } from '../../../agent/runtime/create-options.js';
import { parseImageReference } from '../../../agent/runtime/docker-runtime.js';
import { RuntimeError } from '../../../agent/runtime/errors.js';
import {
  LABEL_APP,
  LABEL_APP_REVISION,
  LABEL_CONTAINER,
  LABEL_DEVICE,
  LABEL_MANAGED,
  LABEL_SPEC_HASH,
} from '../../../agent/runtime/labels.js';
import { timestampNanos } from '../../../agent/runtime/log-time.js';
import type {
  ContainerCounters,
  ContainerRuntime,
  CreateRequest,
  FollowLogsOptions,
  LogEntry,
  ManagedContainer,
  RemoteProcess,
  RestartPolicy,
  RuntimeInfo,
  SessionTarget,
} from '../../../agent/runtime/runtime.js';
import type { RegistryAuth } from '../../../shared/index.js';

/** How a simulated image behaves; returned per image by `MemoryRuntimeOptions.behaviour`. */
export interface ImageBehaviour {
  /** The container exits with code 1 as soon as it starts (or after `crashAfterMs`). */
  crash?: boolean;
  /** Delay between start and the crash; 0 (the default) means it is already exited when `start` returns. */
  crashAfterMs?: number;
  /** Starts fail with this message and leave the container created, as Docker's do when the command or a mount is missing. */
  startFails?: string;
  /** Pulls fail with this message, as a registry that does not have the image would. */
  pullFails?: string;
  /** How long a pull of this image takes (overrides the runtime's `pullDelayMs`). */
  pullDelayMs?: number;
  /** Docker HEALTHCHECK status a running container reports (as for an image with a HEALTHCHECK). */
  health?: 'starting' | 'healthy' | 'unhealthy';
}

export interface MemoryRuntimeOptions {
  /** Scope `listManaged` and `watch` to containers labelled with this device id, like DockerRuntimeOptions.deviceId. */
  deviceId?: string;
  /** Default pull duration in ms (0: the image arrives on the next turn of the event loop). */
  pullDelayMs?: number;
  /** Failure injection per image reference, as written in the spec. */
  behaviour?: (image: string) => ImageBehaviour | undefined;
  /**
   * Reported as the engine's data root. Leave it undefined for simulations:
   * with a data root the agent's disk pre-flight asks the image's registry for
   * its size over HTTP before every pull.
   */
  dataRoot?: string;
  /** Images present from the start. */
  images?: readonly string[];
  now?: () => number;
}

/** One simulated container, as the engine would hold it. */
export interface MemoryContainer {
  id: string;
  name: string;
  image: string;
  labels: Record<string, string>;
  state: 'created' | 'running' | 'exited';
  restartCount: number;
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  exitCode?: number;
  /** Why its last start failed, while it never ran. */
  startError?: string;
  health?: 'starting' | 'healthy' | 'unhealthy';
  networkMode: string;
  mountSources: string[];
}

type Listener = () => void;

interface LogFollower {
  onLine: (entry: LogEntry) => void;
  onEnd: (err?: Error) => void;
}

const MAX_LOG_LINES = 1000;

export class MemoryRuntime implements ContainerRuntime {
  private readonly containersById = new Map<string, MemoryContainer>();
  private readonly imageSet = new Set<string>();
  private readonly listeners = new Set<Listener>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly crashTimers = new Map<string, NodeJS.Timeout>();
  private readonly logs = new Map<string, LogEntry[]>();
  private readonly logFollowers = new Map<string, Set<LogFollower>>();
  private readonly now: () => number;
  /** How often each operation was called: the load the agent puts on an engine. */
  readonly calls: Record<string, number> = {};
  private closed = false;

  constructor(private readonly options: MemoryRuntimeOptions = {}) {
    this.now = options.now ?? Date.now;
    for (const image of options.images ?? []) this.imageSet.add(imageKey(image));
  }

  // --- ContainerRuntime -------------------------------------------------------------------------

  async info(): Promise<RuntimeInfo> {
    this.count('info');
    return { version: 'memory', ...(this.options.dataRoot !== undefined ? { dataRoot: this.options.dataRoot } : {}) };
  }

  async listManaged(): Promise<ManagedContainer[]> {
    this.count('listManaged');
    return [...this.containersById.values()].filter((c) => this.inScope(c)).flatMap((c) => this.observe(c));
  }

  async hasImage(image: string): Promise<boolean> {
    this.count('hasImage');
    return this.imageSet.has(imageKey(image));
  }

  pull(image: string, _auth: RegistryAuth | undefined, signal: AbortSignal): Promise<void> {
    this.count('pull');
    const aborted = () => new RuntimeError('aborted', `pull ${image}: aborted`);
    if (signal.aborted) return Promise.reject(aborted());
    const behaviour = this.behaviourOf(image);
    const delay = behaviour.pullDelayMs ?? this.options.pullDelayMs ?? 0;
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        clearTimeout(timer);
        this.timers.delete(timer);
        reject(aborted());
      };
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        signal.removeEventListener('abort', onAbort);
        if (behaviour.pullFails !== undefined) {
          reject(new RuntimeError('pull_failed', `pull ${image}: ${behaviour.pullFails}`));
          return;
        }
        this.imageSet.add(imageKey(image));
        resolve();
      }, delay);
      this.timers.add(timer);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  async create(request: CreateRequest): Promise<string> {
    this.count('create');
    const options = toCreateOptions(request);
    const name = options.name ?? '';
    const image = options.Image ?? request.spec.image;
    const context = `create container ${name} from ${image}`;
    if (!this.imageSet.has(imageKey(image))) {
      throw new RuntimeError('not_found', `${context}: No such image: ${image}`, { statusCode: 404 });
    }
    const holder = this.byName(name);
    if (holder) throw conflictOnName(context, name, holder.id);
    const id = randomBytes(32).toString('hex');
    const container: MemoryContainer = {
      id,
      name,
      image,
      labels: { ...(options.Labels ?? {}) },
      state: 'created',
      restartCount: 0,
      createdAt: this.now(),
      networkMode: options.HostConfig?.NetworkMode ?? 'default',
      // Bind mounts only: named volumes live under a data root this runtime does not have.
      mountSources: (options.HostConfig?.Mounts ?? []).filter((m) => m.Type === 'bind' && m.Source).map((m) => m.Source!),
    };
    this.containersById.set(id, container);
    this.changed();
    return id;
  }

  async start(id: string): Promise<void> {
    this.count('start');
    const container = this.get(id, `start container ${id}`);
    if (container.state === 'running') return; // Docker's 304: already running
    const { startFails } = this.behaviourOf(container.image);
    if (startFails !== undefined && container.startedAt === undefined) {
      container.startError = startFails;
      throw new RuntimeError('engine', `start container ${id}: ${startFails}`, { statusCode: 500 });
    }
    delete container.startError;
    container.state = 'running';
    container.startedAt = this.now();
    delete container.finishedAt;
    delete container.exitCode;
    const behaviour = this.behaviourOf(container.image);
    if (behaviour.health !== undefined) container.health = behaviour.health;
    this.changed();
    if (behaviour.crash) {
      const crashAfter = behaviour.crashAfterMs ?? 0;
      if (crashAfter <= 0) this.exit(container, 1);
      else {
        const timer = setTimeout(() => {
          this.crashTimers.delete(id);
          if (container.state === 'running' && this.containersById.get(id) === container) this.exit(container, 1);
        }, crashAfter);
        this.crashTimers.set(id, timer);
      }
    }
  }

  async stop(id: string, _timeoutSeconds: number): Promise<void> {
    this.count('stop');
    const container = this.containersById.get(id);
    if (container?.state !== 'running') return; // gone or already stopped: 404/304, not errors
    this.exit(container, 0);
  }

  async removeImage(image: string): Promise<void> {
    this.count('removeImage');
    const key = imageKey(image);
    if (!this.imageSet.has(key)) return;
    const user = [...this.containersById.values()].find((c) => imageKey(c.image) === key);
    if (user) {
      throw new RuntimeError(
        'conflict',
        `remove image ${image}: conflict: unable to remove repository reference "${image}" (must force) - container ${user.id.slice(0, 12)} is using its referenced image`,
        { statusCode: 409 },
      );
    }
    this.imageSet.delete(key);
  }

  /** Simulated containers have no networks to leave. */
  async leaveNetworks(_id: string): Promise<void> {}

  async rename(id: string, name: string): Promise<void> {
    this.count('rename');
    const context = `rename container ${id.slice(0, 12)} to ${name}`;
    const container = this.get(id, context);
    if (container.name === name) return;
    const holder = this.byName(name);
    if (holder) throw conflictOnName(context, name, holder.id);
    container.name = name;
    this.changed();
  }

  /** Restart policies are not simulated: only the call is counted. */
  async setRestartPolicy(id: string, _policy: RestartPolicy): Promise<void> {
    this.count('setRestartPolicy');
    this.get(id, `set the restart policy of container ${id.slice(0, 12)}`);
  }

  async remove(id: string): Promise<void> {
    this.count('remove');
    const container = this.containersById.get(id);
    if (!container) return;
    if (container.state === 'running') {
      throw new RuntimeError(
        'conflict',
        `remove container ${id}: cannot remove container "/${container.name}": container is running: stop the container before removing or force remove`,
        { statusCode: 409 },
      );
    }
    this.clearCrash(id);
    this.containersById.delete(id);
    this.logs.delete(id);
    this.changed();
  }

  /** Simulated containers run no processes: remote sessions find nothing to reach. */
  async sessionTarget(app: string): Promise<SessionTarget> {
    this.count('sessionTarget');
    throw new RuntimeError('not_found', `app ${app} runs no container this simulated engine can reach`);
  }

  async exec(target: SessionTarget): Promise<RemoteProcess> {
    this.count('exec');
    throw new RuntimeError('not_found', `exec in container ${target.dockerName}: the simulated engine runs no processes`);
  }

  /** Lines written so far at or after `since`, then, while the container runs, each new one; ends when it stops. */
  followLogs(id: string, options: FollowLogsOptions, onLine: (entry: LogEntry) => void, onEnd: (err?: Error) => void): () => void {
    this.count('followLogs');
    const follower: LogFollower = { onLine, onEnd };
    let stopped = false;
    const timer = setImmediate(() => {
      const container = this.containersById.get(id);
      if (stopped || !container) {
        if (!stopped) onEnd(new RuntimeError('not_found', `follow logs of container ${id}: No such container: ${id}`, { statusCode: 404 }));
        return;
      }
      const since = options.since === undefined ? undefined : timestampNanos(options.since);
      for (const entry of this.logs.get(id) ?? []) if (since === undefined || (timestampNanos(entry.ts) ?? 0n) >= since) onLine(entry);
      if (container.state !== 'running') {
        onEnd();
        return;
      }
      const followers = this.logFollowers.get(id) ?? new Set<LogFollower>();
      this.logFollowers.set(id, followers);
      followers.add(follower);
    });
    return () => {
      stopped = true;
      clearImmediate(timer);
      this.logFollowers.get(id)?.delete(follower);
    };
  }

  watch(onChange: () => void, _onError: (err: Error) => void): () => void {
    this.count('watch');
    // A distinct function per subscription, so the same callback watched twice is two subscriptions.
    const listener: Listener = () => onChange();
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /**
   * Made-up but plausible counters, so simulated agents publish metrics: a
   * running container uses 1% of one core and 8 MiB, nothing else.
   */
  async stats(id: string): Promise<ContainerCounters | undefined> {
    this.count('stats');
    const c = this.containersById.get(id);
    if (c?.state !== 'running' || !this.inScope(c)) return undefined;
    const now = this.now();
    return {
      cpuNs: (now - (c.startedAt ?? now)) * 1e4,
      memBytes: 8 * 1024 * 1024,
      netRxBytes: 0,
      netTxBytes: 0,
      blkReadBytes: 0,
      blkWriteBytes: 0,
      pids: 1,
      readAtMs: now,
    };
  }

  // --- For tests and benchmarks -----------------------------------------------------------------

  /** Every container, in this runtime's scope or not (snapshots: changing them changes nothing). */
  containers(): MemoryContainer[] {
    return [...this.containersById.values()].map((c) => ({ ...c, labels: { ...c.labels }, mountSources: [...c.mountSources] }));
  }

  /** Image references present, in the engine's normalized form (`name:tag` or `name@digest`). */
  images(): string[] {
    return [...this.imageSet].sort();
  }

  /** Simulates a running container writing a line (timestamped with this runtime's clock). */
  writeLog(id: string, stream: 'stdout' | 'stderr', line: string): void {
    if (this.containersById.get(id)?.state !== 'running') return;
    const entry: LogEntry = { stream, ts: new Date(this.now()).toISOString(), line };
    const lines = this.logs.get(id) ?? [];
    this.logs.set(id, lines);
    lines.push(entry);
    if (lines.length > MAX_LOG_LINES) lines.splice(0, lines.length - MAX_LOG_LINES);
    for (const follower of this.logFollowers.get(id) ?? []) follower.onLine(entry);
  }

  /** Simulates a container dying on its own (a crash, an OOM kill). */
  kill(id: string, exitCode = 137): void {
    const container = this.containersById.get(id);
    if (container?.state === 'running') this.exit(container, exitCode);
  }

  /** Stops pending pulls and crash timers and silences watchers. Idempotent. */
  close(): void {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    for (const timer of this.crashTimers.values()) clearTimeout(timer);
    this.timers.clear();
    this.crashTimers.clear();
    this.listeners.clear();
    this.logFollowers.clear();
  }

  // --- internals --------------------------------------------------------------------------------

  private count(op: string): void {
    this.calls[op] = (this.calls[op] ?? 0) + 1;
  }

  private behaviourOf(image: string): ImageBehaviour {
    return this.options.behaviour?.(image) ?? {};
  }

  private inScope(container: MemoryContainer): boolean {
    if (container.labels[LABEL_MANAGED] !== 'true') return false;
    return this.options.deviceId === undefined || container.labels[LABEL_DEVICE] === this.options.deviceId;
  }

  private byName(name: string): MemoryContainer | undefined {
    for (const container of this.containersById.values()) if (container.name === name) return container;
    return undefined;
  }

  private get(id: string, context: string): MemoryContainer {
    const container = this.containersById.get(id);
    if (!container) throw new RuntimeError('not_found', `${context}: No such container: ${id}`, { statusCode: 404 });
    return container;
  }

  private exit(container: MemoryContainer, exitCode: number): void {
    this.clearCrash(container.id);
    container.state = 'exited';
    container.exitCode = exitCode;
    container.finishedAt = this.now();
    delete container.health;
    const followers = this.logFollowers.get(container.id);
    this.logFollowers.delete(container.id);
    for (const follower of followers ?? []) follower.onEnd();
    this.changed();
  }

  private clearCrash(id: string): void {
    const timer = this.crashTimers.get(id);
    if (timer) clearTimeout(timer);
    this.crashTimers.delete(id);
  }

  /** Tells watchers on a later turn of the event loop, as Docker's event stream would. */
  private changed(): void {
    if (this.closed || this.listeners.size === 0) return;
    setImmediate(() => {
      for (const listener of [...this.listeners]) {
        try {
          listener();
        } catch {
          // A watcher's failure is its own; the engine keeps going.
        }
      }
    });
  }

  private observe(c: MemoryContainer): ManagedContainer[] {
    const app = c.labels[LABEL_APP];
    const container = c.labels[LABEL_CONTAINER];
    if (!app || !container) return []; // as DockerRuntime: managed but unattributable, ignored
    const revision = Number(c.labels[LABEL_APP_REVISION]);
    return [
      {
        id: c.id,
        dockerName: c.name,
        app,
        container,
        appRevision: Number.isSafeInteger(revision) ? revision : 0,
        specHash: c.labels[LABEL_SPEC_HASH] ?? '',
        image: c.image,
        state: c.state,
        status: this.statusOf(c),
        restartCount: c.restartCount,
        ...(c.state === 'exited' && c.exitCode !== undefined ? { exitCode: c.exitCode } : {}),
        ...(c.state === 'created' && c.startError !== undefined ? { startError: c.startError } : {}),
        ...(c.startedAt !== undefined ? { startedAt: new Date(c.startedAt).toISOString() } : {}),
        ...(c.state === 'running' && c.health !== undefined ? { health: c.health } : {}),
        networkMode: c.networkMode,
        mountSources: [...c.mountSources],
      },
    ];
  }

  /** Docker's human status: "Created", "Up 3 seconds", "Exited (1) 2 seconds ago". */
  private statusOf(c: MemoryContainer): string {
    if (c.state === 'created') return 'Created';
    if (c.state === 'running') return `Up ${ago(this.now() - (c.startedAt ?? c.createdAt))}`;
    return `Exited (${c.exitCode ?? 0}) ${ago(this.now() - (c.finishedAt ?? c.createdAt))} ago`;
  }
}

/** Docker answers for "busybox", "busybox:latest" and "docker.io/library/busybox" alike. */
export function imageKey(image: string): string {
  const ref = parseImageReference(image);
  return ref.digest !== undefined ? `${ref.name}@${ref.digest}` : `${ref.name}:${ref.tag}`;
}

function conflictOnName(context: string, name: string, holderId: string): RuntimeError {
  return new RuntimeError(
    'conflict',
    `${context}: Conflict. The container name "/${name}" is already in use by container "${holderId}". You have to remove (or rename) that container to be able to reuse that name.`,
    { statusCode: 409 },
  );
}

function ago(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 1) return 'Less than a second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.round(seconds / 60);
  return minutes < 60 ? `${minutes} minutes` : `${Math.round(minutes / 60)} hours`;
}

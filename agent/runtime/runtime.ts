/**
 * The narrow seam between the agent and a container engine. The Docker
 * implementation (docker-runtime.ts) drives a real engine through dockerode;
 * the fleet simulator and pure unit tests may supply their own.
 */
import type { Readable, Writable } from 'node:stream';
import type { ContainerSpec, RegistryAuth } from '../../shared/index.js';

export type RestartPolicy = NonNullable<ContainerSpec['restartPolicy']>;

/** What the engine says of any container the agent made (an app's, an init step's, a job's): how it runs or ran. */
export interface ContainerRun {
  id: string;
  /** Docker's name without the leading "/". */
  dockerName: string;
  image: string;
  /** Docker's state: created, running, restarting, exited, paused, dead, removing. */
  state: string;
  /** Once it exited (exited or dead only). */
  exitCode?: number;
  /** Why the engine could not start it (a missing command, device or host path), while it never ran: Docker's State.Error. */
  startError?: string;
  startedAt?: string;
  /** When it last stopped (exited or dead only): whether its exit fell in an engine outage. */
  finishedAt?: string;
}

/** A container the agent manages, as observed from its Flotilla labels. */
export interface ManagedContainer extends ContainerRun {
  app: string;
  container: string;
  appRevision: number;
  specHash: string;
  /** Docker's human status, e.g. "Up 3 minutes". */
  status: string;
  restartCount: number;
  /** Docker's health status (starting, healthy, unhealthy) when the container has a HEALTHCHECK. */
  health?: string;
  /** The container's address on its network, for the agent's own http/tcp health probes. */
  ipAddress?: string;
  networkMode?: string;
  /** Host paths of the container's volumes and bind mounts (where an app's update lock may live). */
  mountSources?: string[];
  /** The main process's pid (in the engine's pid namespace) while running: where its cgroup and network counters are read. */
  pid?: number;
}

/**
 * An init container of an app (`spec.initContainers`), as observed from its labels: the app's
 * labels plus `flotilla.init`, so the reconciler never takes it for one of the app's containers.
 */
export interface InitContainer extends ContainerRun {
  app: string;
  /** Its name in the spec's `initContainers`. */
  container: string;
  /** The revision it ran for. */
  appRevision: number;
  specHash: string;
}

/** Cumulative resource counters of a running container; rates come from two readings. */
export interface ContainerCounters {
  /** CPU time used since the container started, in nanoseconds. */
  cpuNs: number;
  /** Memory in use less the inactive page cache, as `docker stats` shows it. */
  memBytes: number;
  /** The limit as the kernel or engine reports it (unlimited reads as the host's memory, or not at all). */
  memLimitBytes?: number;
  netRxBytes: number;
  netTxBytes: number;
  blkReadBytes: number;
  blkWriteBytes: number;
  pids: number;
  /** When the counters were read (ms since the epoch, fractional), for the rate between two readings. */
  readAtMs: number;
}

export interface CreateRequest {
  deviceId: string;
  /**
   * Prepended to the Docker container name. Empty on a real device; set when
   * several agents share one engine (tests, the fleet simulator), whose
   * containers would otherwise collide on `{app}_{container}`.
   */
  namePrefix?: string;
  /** The whole Docker name, overriding `{prefix}{app}_{container}` (a new version beside the old one). */
  name?: string;
  app: string;
  appRevision: number;
  specHash: string;
  spec: ContainerSpec;
}

/** A container of a job's attempt (agent/jobs/), as observed from its labels. */
export interface JobContainer extends ContainerRun {
  job: string;
  execution: string;
  /** The attempt it belongs to (1, 2, …). */
  attempt: number;
  /** The container's name in the job's spec. */
  container: string;
}

/** One container of one attempt of a job execution, to create (not start). */
export interface JobContainerRequest {
  deviceId: string;
  /** See CreateRequest.namePrefix. */
  namePrefix?: string;
  job: string;
  execution: string;
  attempt: number;
  /** Its restart policy is always `no` and a health check is ignored: a job's container runs once, to its exit. */
  spec: ContainerSpec;
}

/** One line a container wrote, as the engine recorded it. */
export interface LogEntry {
  stream: 'stdout' | 'stderr';
  /** The engine's RFC 3339 timestamp, nanoseconds kept (Docker's own, not the agent's clock). */
  ts: string;
  /** Without its newline; at most `maxLineBytes` of UTF-8. */
  line: string;
  /** The line was longer than `maxLineBytes` and was cut. */
  truncated?: boolean;
}

export interface FollowLogsOptions {
  /** RFC 3339 timestamp: only lines at or after it (the engine's `since` is inclusive). Absent: from the container's first line. */
  since?: string;
  /** A longer line is cut here (and the rest of it skipped), so a line without a newline cannot grow memory. */
  maxLineBytes: number;
}

/** The running container a remote session (exec, port-forward) reaches. */
export interface SessionTarget {
  id: string;
  dockerName: string;
  app: string;
  container: string;
  /** Its address on its network; none under host networking. */
  ipAddress?: string;
  networkMode: string;
}

export interface ExecOptions {
  command: string[];
  tty: boolean;
  /** Attach stdin; otherwise the command's stdin is closed from the start. */
  stdin: boolean;
  rows?: number;
  cols?: number;
}

/** A command a remote session runs (in a container, or the host's shell), with its streams. */
export interface RemoteProcess {
  /** Its stdout, or the terminal's output under a TTY. */
  readonly stdout: Readable;
  /** Its stderr; undefined under a TTY, where it merges into stdout. */
  readonly stderr: Readable | undefined;
  /** Its stdin: end() is EOF. Writes after the process went away are dropped. */
  readonly stdin: Writable;
  /** Sets the terminal's size (a TTY only). */
  resize(rows: number, cols: number): Promise<void>;
  /** Its exit code, once its output has ended. */
  exited(): Promise<number>;
  /** Ends it now: destroys its streams and kills the process. */
  kill(): void;
}

export interface RuntimeInfo {
  version: string;
  dataRoot?: string;
}

export interface ContainerRuntime {
  info(): Promise<RuntimeInfo>;
  /**
   * Resolves if the engine answers on a new connection, rejects if not. A
   * shutting-down dockerd stops accepting connections before it stops its
   * containers, yet still serves the ones already open, so a container seen
   * exiting through a kept-alive connection may have been stopped by the
   * engine itself: this tells the two apart. Optional: a runtime without
   * shutdown (an in-memory one) needs no such check.
   */
  confirmReachable?(): Promise<void>;
  /** Every app container carrying `flotilla.managed=true`, running or not; a job's containers and init containers are not among them. */
  listManaged(): Promise<ManagedContainer[]>;
  /**
   * Every container of a job's attempt (`flotilla.job`), running or not.
   * This and the next two are optional: a runtime without them runs no jobs
   * (the fleet simulator's); the agent then reports each job failed, saying so.
   */
  listJobContainers?(): Promise<JobContainer[]>;
  /** Creates (but does not start) a container of a job's attempt, labelled as the job's; returns its id. */
  createJobContainer?(request: JobContainerRequest): Promise<string>;
  /**
   * Every init container (`flotilla.init`), running or not. This and the next are optional:
   * a runtime without them runs no app with init containers (each such revision fails its gate, saying so).
   */
  listInitContainers?(): Promise<InitContainer[]>;
  /** Creates (but does not start) an init container of an app's revision, restart policy `no`; returns its id. */
  createInitContainer?(request: CreateRequest): Promise<string>;
  /** The last `lines` lines a container wrote, stdout and stderr together, oldest first (a stopped container's too). */
  tailLogs?(id: string, lines: number, maxLineBytes: number): Promise<LogEntry[]>;
  /** The size of a local image in bytes (for the `pulled` event); optional for runtimes without images. */
  imageSize?(image: string): Promise<number | undefined>;
  /** Whether an image reference (as written in a spec) is present locally. */
  hasImage(image: string): Promise<boolean>;
  /** Pulls an image, resolving when the pull completed and rejecting with the engine's reason otherwise. */
  pull(image: string, auth: RegistryAuth | undefined, signal: AbortSignal): Promise<void>;
  /** Creates (but does not start) a container; returns its id. */
  create(request: CreateRequest): Promise<string>;
  start(id: string): Promise<void>;
  /** Stops gracefully (SIGTERM, then SIGKILL after the timeout); a stopped container is not an error. */
  stop(id: string, timeoutSeconds: number): Promise<void>;
  /** Removes an image by reference (untags it; layers go when no tag is left); a missing image is not an error. */
  removeImage(image: string): Promise<void>;
  /** Disconnects a container from its user-defined networks (not bridge/host/none), so their DNS stops naming it. */
  leaveNetworks(id: string): Promise<void>;
  /** Renames a container (running or not). */
  rename(id: string, name: string): Promise<void>;
  /**
   * Changes a container's restart policy, running or not (`docker update --restart`).
   * A stashed version gets `no`: the engine starts an `always` container at its
   * own start (a reboot) even after it was stopped.
   */
  setRestartPolicy(id: string, policy: RestartPolicy): Promise<void>;
  /** Removes a container; an already-removed container is not an error. */
  remove(id: string): Promise<void>;
  /**
   * Calls `onChange` whenever a managed container (an app's or a job's)
   * changes state (started, died, removed…), so the agent re-observes
   * without polling. Returns a stop function.
   */
  watch(onChange: () => void, onError: (err: Error) => void): () => void;
  /**
   * A running container's counters from the engine; undefined when it is not
   * running or gone. Slow on Docker (it answers at its next one-second
   * collection tick): the metrics collector reads cgroup files and asks this
   * only when it cannot (agent/telemetry/metrics/cgroup.ts).
   */
  stats(id: string): Promise<ContainerCounters | undefined>;
  /**
   * Follows one container's stdout and stderr: `onLine` for every line, in
   * order; `onEnd` once, when the container stops (or the stream fails, with
   * the error). A stopped container yields its lines since `since`, then ends.
   * Returns a stop function, after which neither callback is called.
   */
  followLogs(id: string, options: FollowLogsOptions, onLine: (entry: LogEntry) => void, onEnd: (err?: Error) => void): () => void;
  /**
   * The running container of `app` a session reaches: the one named
   * `container`, or the app's only one. A `not_found` RuntimeError when the
   * app runs none, none by that name, or several and none was named (the
   * message names them).
   */
  sessionTarget(app: string, container?: string): Promise<SessionTarget>;
  /** Starts a command in a running container (`docker exec`). */
  exec(target: SessionTarget, options: ExecOptions): Promise<RemoteProcess>;
}

/**
 * `ContainerRuntime` over a real Docker Engine, through dockerode. The release
 * bundles it without docker-modem's SSH transport and BuildKit's gRPC session,
 * which an agent never uses (build.mjs says why).
 *
 * Invariants:
 * - Every engine error leaves this file as a `RuntimeError` (errors.ts) whose
 *   message says what was being done to what; callers never see HTTP codes.
 * - The idempotent operations are idempotent at the engine too: starting a
 *   running container, stopping a stopped one and removing a removed one all
 *   succeed, so a step retried by the next reconcile tick cannot fail on its
 *   own earlier success.
 * - Nothing here keeps state about containers; labels on the engine are the record.
 * - A digest reference the agent loaded itself (the engine knows it only by
 *   image ID) is resolved through the image aliases: present, created from
 *   and removed as if the engine knew the reference, and observed as the
 *   reference (LABEL_IMAGE), so the planner never sees the ID. Its keep tag
 *   (images/keep-tag.ts), which holds it against `docker image prune`, is
 *   removed with it.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { type Readable, Writable } from 'node:stream';
import Dockerode from 'dockerode';
import type { ContainerSpec, RegistryAuth } from '../../shared/index.js';
import type { ImageAliases } from '../images/image-aliases.js';
import { keepTag } from '../images/keep-tag.js';
import { dockerRestartPolicy, toCreateOptions, toInitCreateOptions, toJobCreateOptions } from './create-options.js';
import { dockerExec, findSessionTarget } from './docker-exec.js';
import { LogLineSplitter } from './docker-log-lines.js';
import { countersFromEngineStats, type EngineStats } from './engine-stats.js';
import { engineMessage, RuntimeError, statusCodeOf, toRuntimeError } from './errors.js';
import {
  LABEL_APP,
  LABEL_APP_REVISION,
  LABEL_CONTAINER,
  LABEL_DEVICE,
  LABEL_IMAGE,
  LABEL_INIT,
  LABEL_JOB,
  LABEL_JOB_ATTEMPT,
  LABEL_JOB_EXECUTION,
  LABEL_MANAGED,
  LABEL_SPEC_HASH,
} from './labels.js';
import { tailLines } from './log-tail.js';
import { dockerSince, timestampNanos } from './log-time.js';
import type {
  ContainerCounters,
  ContainerRun,
  ContainerRuntime,
  CreateRequest,
  ExecOptions,
  FollowLogsOptions,
  InitContainer,
  JobContainer,
  JobContainerRequest,
  LogEntry,
  ManagedContainer,
  RemoteProcess,
  RestartPolicy,
  RuntimeInfo,
  SessionTarget,
} from './runtime.js';
import { writeSecretFiles } from './secret-files.js';

/** The slice of a pino logger this file uses. */
export interface RuntimeLogger {
  warn(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

const silent: RuntimeLogger = { warn() {}, info() {}, debug() {} };

export interface DockerRuntimeOptions {
  /**
   * Restrict listManaged and watch to containers labelled with this device
   * id. A device has one agent per engine and needs no scope; set it where
   * several agents share one engine (e2e tests, the fleet simulator), or each
   * agent would retire the others' containers as "no longer desired".
   */
  deviceId?: string;
  /** Digest references the agent loaded itself, by image ID (agent/images/image-aliases.ts). Without it, only the engine's own references count. */
  imageAliases?: ImageAliases;
}

/** Where the engine finds an image a spec names: the reference itself, or the ID a digest reference was loaded as. */
interface LocalImage {
  /** What to give the engine: the reference, or an image ID. */
  name: string;
  info: Dockerode.ImageInspectInfo;
  aliased: boolean;
}

const MANAGED_FILTER = `${LABEL_MANAGED}=true`;

/**
 * Container events that can change what `listManaged` returns. Left out on
 * purpose: exec_create/exec_start/exec_die, which an exec healthcheck emits
 * on every probe and would wake the reconcile loop every few seconds per
 * container; attach/resize/top/export/archive-path, which change nothing.
 */
export const WATCHED_EVENTS: readonly string[] = [
  'create',
  'start',
  'restart',
  'die',
  'kill',
  'oom',
  'stop',
  'pause',
  'unpause',
  'destroy',
  'rename',
  'update',
  'health_status',
];

/** An engine that cannot answer a ping in this long is as good as gone. */
const CONFIRM_TIMEOUT_MS = 5_000;

/** Docker reports a never-started container's StartedAt as the zero time. */
const ZERO_TIME = '0001-01-01T00:00:00Z';

/**
 * How a container runs or ran, from its inspect. A failed start leaves a container "created", its exit
 * code 127 or 128 and the reason in State.Error: that is `startError` (after an exit too with `startErrorAfterExit`).
 */
function containerRun(
  details: Dockerode.ContainerInspectInfo,
  labels: Record<string, string>,
  { startErrorAfterExit = false } = {},
): ContainerRun {
  const state = details.State;
  const finished = state.Status === 'exited' || state.Status === 'dead';
  return {
    id: details.Id,
    dockerName: details.Name.replace(/^\//, ''),
    image: labels[LABEL_IMAGE] ?? details.Config.Image,
    state: state.Status,
    ...(finished ? { exitCode: state.ExitCode } : {}),
    ...(state.Error && (startErrorAfterExit || state.Status === 'created') ? { startError: state.Error } : {}),
    ...(state.StartedAt && state.StartedAt !== ZERO_TIME ? { startedAt: state.StartedAt } : {}),
    ...(finished && state.FinishedAt && state.FinishedAt !== ZERO_TIME ? { finishedAt: state.FinishedAt } : {}),
  };
}

/** The app revision and spec hash an app's or an init step's container was made for. */
function revisionLabels(labels: Record<string, string>): { appRevision: number; specHash: string } {
  const revision = Number(labels[LABEL_APP_REVISION]);
  return { appRevision: Number.isSafeInteger(revision) ? revision : 0, specHash: labels[LABEL_SPEC_HASH] ?? '' };
}

export class DockerRuntime implements ContainerRuntime {
  private readonly docker: Dockerode;
  private readonly log: RuntimeLogger;
  private readonly labelFilter: string[];
  private readonly aliases: ImageAliases | undefined;

  constructor(docker: Dockerode, logger: RuntimeLogger = silent, options: DockerRuntimeOptions = {}) {
    this.docker = docker;
    this.log = logger;
    this.aliases = options.imageAliases;
    this.labelFilter = options.deviceId === undefined ? [MANAGED_FILTER] : [MANAGED_FILTER, `${LABEL_DEVICE}=${options.deviceId}`];
  }

  async info(): Promise<RuntimeInfo> {
    try {
      const info = (await this.docker.info()) as { ServerVersion?: unknown; DockerRootDir?: unknown };
      return {
        version: String(info.ServerVersion ?? 'unknown'),
        ...(typeof info.DockerRootDir === 'string' ? { dataRoot: info.DockerRootDir } : {}),
      };
    } catch (err) {
      throw toRuntimeError(err, 'engine info');
    }
  }

  async confirmReachable(): Promise<void> {
    // A client of its own without keep-alive: the shared one would reuse a
    // connection a shutting-down engine still serves (see ContainerRuntime).
    const modem = this.docker.modem as { protocol?: string };
    if (modem.protocol === 'ssh') return;
    const agent = modem.protocol === 'https' ? new HttpsAgent({ keepAlive: false }) : new HttpAgent({ keepAlive: false });
    try {
      const options = { ...(this.docker.modem as object), agent, timeout: CONFIRM_TIMEOUT_MS };
      await new Dockerode(options as Dockerode.DockerOptions).ping();
    } catch (err) {
      throw toRuntimeError(err, 'reach the engine on a new connection');
    } finally {
      agent.destroy();
    }
  }

  async listManaged(): Promise<ManagedContainer[]> {
    let listed: Dockerode.ContainerInfo[];
    try {
      listed = await this.docker.listContainers({ all: true, filters: { label: this.labelFilter } });
    } catch (err) {
      throw toRuntimeError(err, 'list containers');
    }
    // The list lacks RestartCount, ExitCode and StartedAt, so inspect each one.
    // Devices run a handful of containers; N small local requests are cheap.
    // A job's containers are the job runner's: an app reconciler would retire them as unwanted.
    // Init containers are planned apart (agent/reconcile/init-plan.ts): one that exited is done, not failed.
    const apps = listed.filter((summary) => summary.Labels?.[LABEL_JOB] === undefined && summary.Labels?.[LABEL_INIT] === undefined);
    const observed = await Promise.all(apps.map((summary) => this.observe(summary)));
    return observed.filter((c): c is ManagedContainer => c !== undefined);
  }

  async listJobContainers(): Promise<JobContainer[]> {
    let listed: Dockerode.ContainerInfo[];
    try {
      listed = await this.docker.listContainers({ all: true, filters: { label: [...this.labelFilter, LABEL_JOB] } });
    } catch (err) {
      throw toRuntimeError(err, 'list job containers');
    }
    const observed = await Promise.all(listed.map((summary) => this.observeJob(summary)));
    return observed.filter((c): c is JobContainer => c !== undefined);
  }

  async listInitContainers(): Promise<InitContainer[]> {
    let listed: Dockerode.ContainerInfo[];
    try {
      listed = await this.docker.listContainers({ all: true, filters: { label: [...this.labelFilter, LABEL_INIT] } });
    } catch (err) {
      throw toRuntimeError(err, 'list init containers');
    }
    const observed = await Promise.all(listed.map((summary) => this.observeInit(summary)));
    return observed.filter((c): c is InitContainer => c !== undefined);
  }

  private async observeInit(summary: Dockerode.ContainerInfo): Promise<InitContainer | undefined> {
    const labels = summary.Labels ?? {};
    const app = labels[LABEL_APP];
    const container = labels[LABEL_CONTAINER];
    if (!app || !container) {
      this.log.warn({ containerId: summary.Id, labels }, 'init container without app/container labels; ignored');
      return undefined;
    }
    const details = await this.inspectListed(summary);
    if (!details) return undefined;
    return { ...containerRun(details, labels), app, container, ...revisionLabels(labels) };
  }

  private async observeJob(summary: Dockerode.ContainerInfo): Promise<JobContainer | undefined> {
    const labels = summary.Labels ?? {};
    const job = labels[LABEL_JOB];
    const execution = labels[LABEL_JOB_EXECUTION];
    const container = labels[LABEL_CONTAINER];
    const attempt = Number(labels[LABEL_JOB_ATTEMPT]);
    if (!job || !execution || !container || !Number.isSafeInteger(attempt) || attempt < 1) {
      this.log.warn({ containerId: summary.Id, labels }, 'job container without job/execution/attempt/container labels; ignored');
      return undefined;
    }
    const details = await this.inspectListed(summary);
    if (!details) return undefined;
    // A job's start error stays with it after it exits: its report says why the attempt failed.
    return { ...containerRun(details, labels, { startErrorAfterExit: true }), job, execution, attempt, container };
  }

  /** A listed container's details; undefined when it was removed between list and inspect: it is simply gone. */
  private async inspectListed(summary: Dockerode.ContainerInfo): Promise<Dockerode.ContainerInspectInfo | undefined> {
    try {
      return await this.docker.getContainer(summary.Id).inspect();
    } catch (err) {
      if (statusCodeOf(err) === 404) return undefined;
      throw toRuntimeError(err, `inspect container ${summary.Id}`);
    }
  }

  private async observe(summary: Dockerode.ContainerInfo): Promise<ManagedContainer | undefined> {
    const labels = summary.Labels ?? {};
    const app = labels[LABEL_APP];
    const container = labels[LABEL_CONTAINER];
    if (!app || !container) {
      this.log.warn({ containerId: summary.Id, labels }, 'managed container without app/container labels; ignored');
      return undefined;
    }
    const details = await this.inspectListed(summary);
    if (!details) return undefined;
    const state = details.State;
    return {
      ...containerRun(details, labels),
      app,
      container,
      ...revisionLabels(labels),
      status: summary.Status,
      restartCount: details.RestartCount ?? 0,
      ...(state.Health?.Status ? { health: state.Health.Status } : {}),
      ...ipAddressOf(details),
      networkMode: details.HostConfig.NetworkMode ?? 'default',
      mountSources: (details.Mounts ?? []).map((m) => m.Source).filter((source) => source !== ''),
      ...(state.Running && state.Pid > 0 ? { pid: state.Pid } : {}),
    };
  }

  async imageSize(image: string): Promise<number | undefined> {
    const local = await this.localImage(image);
    if (!local) throw new RuntimeError('not_found', `inspect image ${image}: no such image`, { statusCode: 404 });
    return typeof local.info.Size === 'number' ? local.info.Size : undefined;
  }

  async hasImage(image: string): Promise<boolean> {
    return (await this.localImage(image)) !== undefined;
  }

  /** The image `image` names on this engine: the engine's own reference first, then an alias. */
  private async localImage(image: string): Promise<LocalImage | undefined> {
    const info = await this.inspectImage(image);
    if (info && imageMatches(info, image)) return { name: image, info, aliased: false };
    if (!this.aliases || parseImageReference(image).digest === undefined) return undefined;
    const id = await this.aliases.get(image);
    if (id === undefined) return undefined;
    const loaded = await this.inspectImage(id);
    // Gone (a user removed it): as absent as any missing image; the next fetch records it again.
    return loaded && loaded.Id === id ? { name: id, info: loaded, aliased: true } : undefined;
  }

  private async inspectImage(name: string): Promise<Dockerode.ImageInspectInfo | undefined> {
    try {
      return await this.docker.getImage(name).inspect();
    } catch (err) {
      if (statusCodeOf(err) === 404) return undefined;
      throw toRuntimeError(err, `inspect image ${name}`);
    }
  }

  async pull(image: string, auth: RegistryAuth | undefined, signal: AbortSignal): Promise<void> {
    const aborted = () => new RuntimeError('aborted', `pull ${image}: aborted`);
    if (signal.aborted) throw aborted();
    const options: Record<string, unknown> = { abortSignal: signal };
    if (auth) {
      // The engine presents these to whichever registry the reference names;
      // serveraddress is informational for pulls but keep it truthful.
      options.authconfig = { username: auth.username, password: auth.password ?? '', serveraddress: registryHost(image) };
    }
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.docker.pull(image, options);
    } catch (err) {
      if (signal.aborted) throw aborted();
      throw new RuntimeError('pull_failed', `pull ${image}: ${engineMessage(err)}`, withStatus(err));
    }
    this.log.debug({ image }, 'pull started');

    await new Promise<void>((resolve, reject) => {
      let streamError: string | undefined;
      const onAbort = () => {
        destroy(stream);
        reject(aborted());
      };
      signal.addEventListener('abort', onAbort, { once: true });
      // A registry that refuses the image often answers 200 and then reports
      // the failure as a `{error, errorDetail}` line in the progress stream,
      // so an HTTP success alone does not mean the image arrived.
      this.docker.modem.followProgress(
        stream,
        (err: Error | null) => {
          signal.removeEventListener('abort', onAbort);
          if (signal.aborted) return; // already rejected by onAbort
          if (err) reject(new RuntimeError('pull_failed', `pull ${image}: ${engineMessage(err)}`, { cause: err }));
          else if (streamError !== undefined) reject(new RuntimeError('pull_failed', `pull ${image}: ${streamError}`));
          else resolve();
        },
        (event: { error?: unknown; errorDetail?: { message?: unknown } }) => {
          if (event.error === undefined || streamError !== undefined) return;
          const detail = event.errorDetail?.message;
          streamError = String(typeof detail === 'string' ? detail : event.error).trim();
        },
      );
    });
    this.log.info({ image }, 'pulled image');
  }

  create(request: CreateRequest): Promise<string> {
    return this.createFrom(toCreateOptions(request), request.spec);
  }

  createInitContainer(request: CreateRequest): Promise<string> {
    return this.createFrom(toInitCreateOptions(request), request.spec);
  }

  createJobContainer(request: JobContainerRequest): Promise<string> {
    return this.createFrom(toJobCreateOptions(request), request.spec);
  }

  private async createFrom(requested: Dockerode.ContainerCreateOptions, spec: ContainerSpec): Promise<string> {
    const options = await this.throughAlias(requested, spec.image);
    let container: Dockerode.Container;
    try {
      container = await this.docker.createContainer(options);
    } catch (err) {
      // 404 here means the image is missing, 409 that the name is taken.
      throw toRuntimeError(err, `create container ${options.name} from ${options.Image}`);
    }
    if (spec.secrets?.length) {
      try {
        await writeSecretFiles(container, spec);
      } catch (err) {
        // A container without its secret files must not be started by the next
        // step, nor adopted by the next tick: gone, the next plan creates it again.
        await this.remove(container.id).catch(() => undefined);
        // 'engine', whatever the status: a 404 here is a missing path, not a missing image to pull.
        throw new RuntimeError('engine', `write secret files into container ${options.name}: ${engineMessage(err)}`, { cause: err });
      }
    }
    return container.id;
  }

  /**
   * Create options naming the image by ID when `image` is a digest reference the engine knows
   * only through an alias, labelled with the reference so it is what the agent observes.
   */
  private async throughAlias(options: Dockerode.ContainerCreateOptions, image: string): Promise<Dockerode.ContainerCreateOptions> {
    if (!this.aliases || parseImageReference(image).digest === undefined) return options;
    const local = await this.localImage(image);
    if (!local?.aliased) return options;
    return { ...options, Image: local.name, Labels: { ...options.Labels, [LABEL_IMAGE]: image } };
  }

  async start(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).start();
    } catch (err) {
      if (statusCodeOf(err) === 304) return; // already running
      throw toRuntimeError(err, `start container ${id}`);
    }
  }

  async stop(id: string, timeoutSeconds: number): Promise<void> {
    try {
      await this.docker.getContainer(id).stop({ t: Math.max(0, Math.round(timeoutSeconds)) });
    } catch (err) {
      const status = statusCodeOf(err);
      if (status === 304 || status === 404) return; // already stopped, or gone
      throw toRuntimeError(err, `stop container ${id}`);
    }
  }

  async removeImage(image: string): Promise<void> {
    if (!this.aliases || parseImageReference(image).digest === undefined) {
      await this.removeByName(image, image);
      return;
    }
    const local = await this.localImage(image);
    if (local?.aliased) {
      await this.removeAliased(image, local);
      return;
    }
    await this.removeByName(image, image);
    // A digest reference the engine pulled itself may also have been loaded by the agent once.
    await this.aliases.delete(image);
  }

  /**
   * Removes an image the agent loaded for a digest reference. Its keep tag goes first, unless
   * another aliased reference shares it (the same repository and digest): the engine deletes
   * the image with its last tag, and only untags one a container still uses. Then by ID, for an
   * image loaded without a keep tag, unless a tag or another aliased reference still names it;
   * else only this reference is dropped.
   */
  private async removeAliased(image: string, local: LocalImage): Promise<void> {
    const aliases = this.aliases as ImageAliases;
    const others = (await aliases.referencesTo(local.name)).filter((reference) => reference !== image);
    const keep = keepTag(parseImageReference(image));
    let tags = (local.info.RepoTags ?? []).filter((tag) => tag !== '<none>:<none>');
    if (keep !== undefined && tags.includes(keep) && !others.some((other) => keepTag(parseImageReference(other)) === keep)) {
      await this.removeByName(keep, image);
      tags = tags.filter((tag) => tag !== keep);
    }
    if (others.length === 0 && tags.length === 0) await this.removeByName(local.name, image);
    await aliases.delete(image);
  }

  private async removeByName(name: string, image: string): Promise<void> {
    try {
      await this.docker.getImage(name).remove();
    } catch (err) {
      if (statusCodeOf(err) === 404) return;
      throw toRuntimeError(err, name === image ? `remove image ${image}` : `remove image ${image} (${name})`);
    }
  }

  async leaveNetworks(id: string): Promise<void> {
    try {
      const details = await this.docker.getContainer(id).inspect();
      for (const network of Object.keys(details.NetworkSettings?.Networks ?? {})) {
        if (BUILTIN_NETWORKS.has(network)) continue;
        await this.docker.getNetwork(network).disconnect({ Container: id });
      }
    } catch (err) {
      if (statusCodeOf(err) === 404) return;
      throw toRuntimeError(err, `disconnect container ${id.slice(0, 12)} from its networks`);
    }
  }

  async rename(id: string, name: string): Promise<void> {
    try {
      await this.docker.getContainer(id).rename({ name });
    } catch (err) {
      throw toRuntimeError(err, `rename container ${id.slice(0, 12)} to ${name}`);
    }
  }

  async setRestartPolicy(id: string, policy: RestartPolicy): Promise<void> {
    try {
      await this.docker.getContainer(id).update({ RestartPolicy: dockerRestartPolicy(policy) });
    } catch (err) {
      throw toRuntimeError(err, `set the restart policy of container ${id.slice(0, 12)} to ${policy.name}`);
    }
  }

  async remove(id: string): Promise<void> {
    try {
      // force: false, so removing a container that is still running is a
      // conflict the planner sees (it must stop first, gracefully) rather than
      // a SIGKILL. v: true drops the container's anonymous volumes, which a
      // recreate would orphan anyway and which fill an SD card over months of
      // updates; named volumes are never removed by it.
      await this.docker.getContainer(id).remove({ force: false, v: true });
    } catch (err) {
      const status = statusCodeOf(err);
      if (status === 404) return;
      if (status === 409 && /already in progress/i.test(engineMessage(err))) return;
      throw toRuntimeError(err, `remove container ${id}`);
    }
  }

  async stats(id: string): Promise<ContainerCounters | undefined> {
    let stats: EngineStats;
    try {
      // one-shot: no second reading for the CLI's precpu fields; rates are computed by the caller.
      stats = (await this.docker.getContainer(id).stats({ stream: false, 'one-shot': true } as { stream: false })) as EngineStats;
    } catch (err) {
      if (statusCodeOf(err) === 404) return undefined;
      throw toRuntimeError(err, `stats of container ${id.slice(0, 12)}`);
    }
    return countersFromEngineStats(stats, Date.now());
  }

  watch(onChange: () => void, onError: (err: Error) => void): () => void {
    let stopped = false;
    let stream: NodeJS.ReadableStream | undefined;
    const fail = (err: Error) => {
      if (stopped) return;
      stopped = true;
      if (stream) destroy(stream);
      onError(err);
    };
    const options: Dockerode.GetEventsOptions = {
      filters: { type: ['container'], label: this.labelFilter, event: [...WATCHED_EVENTS] },
    };
    this.docker.getEvents(options).then(
      (events) => {
        if (stopped) {
          destroy(events);
          return;
        }
        stream = events;
        let buffer = '';
        events.on('data', (chunk: Buffer | string) => {
          buffer += chunk.toString();
          let newline = buffer.indexOf('\n');
          while (newline >= 0) {
            const line = buffer.slice(0, newline).trim();
            buffer = buffer.slice(newline + 1);
            newline = buffer.indexOf('\n');
            if (line === '' || stopped) continue;
            this.log.debug(describeEvent(line), 'container event');
            try {
              onChange();
            } catch (err) {
              this.log.warn({ err }, 'container event handler threw');
            }
          }
        });
        events.on('error', (err: Error) => fail(toRuntimeError(err, 'container event stream')));
        // The engine ends the stream when it shuts down; the caller must know
        // so it can re-observe and subscribe again once the engine is back.
        events.on('end', () => fail(new RuntimeError('engine', 'container event stream ended')));
        events.on('close', () => fail(new RuntimeError('engine', 'container event stream closed')));
      },
      (err: unknown) => fail(toRuntimeError(err, 'subscribe to container events')),
    );
    return () => {
      stopped = true;
      if (stream) destroy(stream);
    };
  }
  sessionTarget(app: string, container?: string): Promise<SessionTarget> {
    return findSessionTarget(this.docker, this.labelFilter, app, container);
  }

  exec(target: SessionTarget, options: ExecOptions): Promise<RemoteProcess> {
    return dockerExec(this.docker, target, options);
  }

  async tailLogs(id: string, lines: number, maxLineBytes: number): Promise<LogEntry[]> {
    const container = this.docker.getContainer(id);
    try {
      const tty = (await container.inspect()).Config.Tty === true;
      // Without `follow` the engine answers with the whole (tailed) log at once: a buffer, not a stream.
      const raw = (await container.logs({ follow: false, stdout: true, stderr: true, timestamps: true, tail: lines })) as unknown;
      return tailLines(Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw)), tty, lines, maxLineBytes);
    } catch (err) {
      throw toRuntimeError(err, `read the last lines of container ${id.slice(0, 12)}`);
    }
  }

  followLogs(id: string, options: FollowLogsOptions, onLine: (entry: LogEntry) => void, onEnd: (err?: Error) => void): () => void {
    let stopped = false;
    let stream: NodeJS.ReadableStream | undefined;
    const splitters: LogLineSplitter[] = [];
    const finish = (err?: Error) => {
      if (stopped) return;
      // The last line of a stream that ended without a newline, before anything is stopped.
      for (const splitter of splitters) splitter.end();
      stopped = true;
      if (stream) destroy(stream);
      onEnd(err);
    };
    const emit = (entry: LogEntry) => {
      if (!stopped) onLine(entry);
    };
    const since = options.since === undefined ? undefined : timestampNanos(options.since);
    const container = this.docker.getContainer(id);
    (async () => {
      // A TTY container's output is one raw stream; anything else is multiplexed with 8-byte frame headers.
      const tty = (await container.inspect()).Config.Tty === true;
      const logs = await container.logs({
        follow: true,
        stdout: true,
        stderr: true,
        timestamps: true,
        ...(since !== undefined ? { since: dockerSince(since) } : {}),
      });
      return { tty, logs };
    })().then(
      ({ tty, logs }) => {
        if (stopped) {
          destroy(logs);
          return;
        }
        stream = logs;
        const stdout = new LogLineSplitter('stdout', options.maxLineBytes, emit);
        splitters.push(stdout);
        if (tty) {
          logs.on('data', (chunk: Buffer) => stdout.push(chunk));
        } else {
          const stderr = new LogLineSplitter('stderr', options.maxLineBytes, emit);
          splitters.push(stderr);
          // Lines are handled synchronously as each frame arrives, so nothing queues between the socket and the pipeline.
          this.docker.modem.demuxStream(logs, sink(stdout), sink(stderr));
        }
        logs.on('error', (err: Error) => finish(toRuntimeError(err, `follow logs of container ${id}`)));
        logs.on('end', () => finish());
        logs.on('close', () => finish());
      },
      (err: unknown) => finish(toRuntimeError(err, `follow logs of container ${id}`)),
    );
    return () => {
      stopped = true;
      if (stream) destroy(stream);
    };
  }
}

/** A writable that hands every chunk to a splitter at once. */
function sink(splitter: LogLineSplitter): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      splitter.push(chunk);
      callback();
    },
  });
}

function withStatus(err: unknown): { cause: unknown; statusCode?: number } {
  const statusCode = statusCodeOf(err);
  return { cause: err, ...(statusCode !== undefined ? { statusCode } : {}) };
}

function destroy(stream: NodeJS.ReadableStream): void {
  const readable = stream as Partial<Readable>;
  if (typeof readable.destroy === 'function') readable.destroy();
}

function describeEvent(line: string): object {
  try {
    const event = JSON.parse(line) as { Action?: string; Actor?: { ID?: string; Attributes?: Record<string, string> } };
    return { action: event.Action, containerId: event.Actor?.ID, app: event.Actor?.Attributes?.[LABEL_APP] };
  } catch {
    return { line };
  }
}

/** A reference split the way the engine reads it; `tag` is "latest" when neither tag nor digest is given. */
export interface ImageReference {
  /** Familiar form, as in RepoTags: "busybox", "127.0.0.1:5000/flotilla-test/web". */
  name: string;
  tag?: string;
  digest?: string;
}

export function parseImageReference(image: string): ImageReference {
  let rest = image;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  // A colon before the last "/" belongs to a registry port, not a tag.
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  if (tag === undefined && digest === undefined) tag = 'latest';
  return { name: familiarName(rest), ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/** "docker.io/library/busybox" → "busybox", as the engine lists it in RepoTags and RepoDigests. */
function familiarName(name: string): string {
  if (registryHost(name) !== 'docker.io') return name;
  return name.replace(/^(docker\.io|index\.docker\.io)\//, '').replace(/^library\/(?=[^/]+$)/, '');
}

/** The registry host a reference pulls from (Docker Hub when the first component is not a host). */
export function registryHost(image: string): string {
  const slash = image.indexOf('/');
  if (slash < 0) return 'docker.io';
  const first = image.slice(0, slash);
  if (first === 'index.docker.io') return 'docker.io';
  return first.includes('.') || first.includes(':') || first === 'localhost' ? first : 'docker.io';
}

/**
 * Whether the image the engine returned for `image` really is that reference.
 * The engine's lookup also accepts an image-id prefix, so "cafe" could match
 * an image whose id starts with cafe; checking RepoTags/RepoDigests keeps the
 * answer exact.
 */
function imageMatches(info: Dockerode.ImageInspectInfo, image: string): boolean {
  if (/^sha256:[0-9a-f]{64}$/.test(image)) return info.Id === image;
  const ref = parseImageReference(image);
  if (ref.digest !== undefined) return (info.RepoDigests ?? []).includes(`${ref.name}@${ref.digest}`);
  return (info.RepoTags ?? []).includes(`${ref.name}:${ref.tag}`);
}

const BUILTIN_NETWORKS = new Set(['bridge', 'host', 'none']);

/** The first network address Docker reports (bridge or a user network); none under host networking. */
function ipAddressOf(details: Dockerode.ContainerInspectInfo): { ipAddress?: string } {
  const networks = Object.values(details.NetworkSettings?.Networks ?? {});
  const ip = networks.map((n) => n.IPAddress).find((address) => address !== undefined && address !== '');
  return ip ? { ipAddress: ip } : {};
}

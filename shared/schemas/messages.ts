/**
 * Every payload that crosses MQTT, one schema each (see DESIGN.md's topic
 * table). Receivers validate before acting; an invalid payload is logged with
 * its reason and dropped.
 */
import { type Static, Type } from '@sinclair/typebox';
import { DownloadTotals, ImageDownload, MAX_REPORTED_IMAGES, Prefetch } from './images.js';
import { DesiredJob, JobExecutionReport, MAX_JOBS_PER_DEVICE } from './job.js';
import { ContainerSpec, DeviceId, Duration, InitContainerSpec, InitPolicy, Labels, Name, UpdatePolicy } from './spec.js';

export const Timestamp = Type.String({ format: 'date-time' });
/**
 * Revisions and sequence numbers stop at 2^53 − 1: a JSON number above that
 * is not an exact integer in JavaScript (1e308 and 2^64 pass
 * Number.isInteger), and a device handed revision 1e308 would take every
 * real revision after it for stale, for good (found by test/integration/fuzz.test.ts).
 */
const MAX_SAFE = Number.MAX_SAFE_INTEGER;
export const Seq = Type.Integer({ minimum: 0, maximum: MAX_SAFE });
const Revision = Type.Integer({ minimum: 1, maximum: MAX_SAFE });

/** One app as a device must run it: the app spec at one revision, secrets resolved. */
export const DesiredApp = Type.Object(
  {
    name: Name,
    revision: Revision,
    containers: Type.Array(ContainerSpec, { minItems: 1 }),
    /** Run to completion, in order, before the containers start (agent/reconcile/init-plan.ts); secrets resolved as the containers'. */
    initContainers: Type.Optional(Type.Array(InitContainerSpec, { minItems: 1 })),
    initPolicy: Type.Optional(InitPolicy),
    update: Type.Optional(UpdatePolicy),
    /** The operator forced this revision: swap even while the app holds its update lock or its update window is closed. */
    forceUpdate: Type.Optional(Type.Boolean()),
    /** Images of a later revision to download now, ahead of this device's rollout stage. */
    prefetch: Type.Optional(Prefetch),
  },
  { additionalProperties: false },
);
export type DesiredApp = Static<typeof DesiredApp>;

/**
 * The hub's signature over a desired document (shared/desired-signature.ts):
 * Ed25519 over the canonical JSON of the document without this field. The
 * value is checked by verification, not here, so a mangled one is refused
 * as a bad signature (with an event) rather than dropped as malformed.
 */
export const DesiredSignature = Type.Object(
  { alg: Type.Literal('ed25519'), value: Type.String({ minLength: 1, maxLength: 512 }) },
  { additionalProperties: false },
);
export type DesiredSignature = Static<typeof DesiredSignature>;

/** A release's version as package.json spells it (`0.3.0`, `0.3.0-rc.1`): also the folder it is unpacked into on a device. */
export const AGENT_VERSION_PATTERN = '^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$';
export const AgentVersion = Type.String({ pattern: AGENT_VERSION_PATTERN, examples: ['0.3.0'] });

/** One release tarball (docker/release-bundle.sh) as a device fetches and checks it. */
export const AgentBundle = Type.Object(
  {
    /** A path on the hub's HTTP API (`/releases/flotilla-0.3.0-linux-arm64.tar.gz`), or an absolute http(s) URL. */
    url: Type.String({ minLength: 1, maxLength: 2048 }),
    sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    /** The tarball's size. */
    bytes: Type.Integer({ minimum: 1, maximum: MAX_SAFE }),
    /** Its files' sizes unpacked: the disk check counts them with the tarball. */
    unpackedBytes: Type.Integer({ minimum: 1, maximum: MAX_SAFE }),
  },
  { additionalProperties: false },
);
export type AgentBundle = Static<typeof AgentBundle>;

/**
 * The agent release a device must run (`flotilla agent upgrade`, docs/agent-upgrades.md).
 * Absent: the device keeps whatever agent it runs. Covered by the document's signature.
 */
export const DesiredAgent = Type.Object(
  {
    version: AgentVersion,
    /**
     * The hub's agent-target revision that set it (one sequence across all targets). A
     * version that rolled back on a device at this revision is not tried again there until
     * a newer revision asks for it (`flotilla agent upgrade --retry`).
     */
    revision: Revision,
    /** The release tarball for this device's architecture: what a bundle install (systemd, /opt/flotilla) fetches. */
    bundle: Type.Optional(AgentBundle),
    /** The agent image by digest (`registry/flotilla/agent@sha256:…`): what an image install runs. */
    image: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
    /** How long the new version has to connect to the hub and report before the device rolls it back (default 5m). */
    healthTimeout: Type.Optional(Duration),
  },
  { additionalProperties: false },
);
export type DesiredAgent = Static<typeof DesiredAgent>;

/** `…/devices/{id}/desired`, retained: the whole truth for one device. */
export const DesiredState = Type.Object(
  {
    deviceId: DeviceId,
    revision: Revision,
    issuedAt: Timestamp,
    apps: Type.Array(DesiredApp),
    /** The agent release this device must run; absent: whatever it runs. */
    agent: Type.Optional(DesiredAgent),
    /** Jobs this device must run once (or stop: `cancel`); one leaves once the hub has its final state. */
    jobs: Type.Optional(Type.Array(DesiredJob, { maxItems: MAX_JOBS_PER_DEVICE })),
    /** Absent only from hubs before signing; agents with a pinned hub key refuse such documents. */
    signature: Type.Optional(DesiredSignature),
  },
  { additionalProperties: false },
);
export type DesiredState = Static<typeof DesiredState>;

/**
 * `starting` covers a new version waiting for its health gate; `rolled-back`
 * means the desired revision failed it and the previous version runs again;
 * `unknown`: the agent cannot reach its container engine, so what runs is not
 * known (since `unknownSince`), only what ran when it last could look.
 */
export const APP_PHASES = ['pending', 'pulling', 'starting', 'running', 'stopping', 'failed', 'rolled-back', 'unknown'] as const;
export const AppPhase = Type.Union(APP_PHASES.map((phase) => Type.Literal(phase)));
export type AppPhase = (typeof APP_PHASES)[number];

export const ContainerState = Type.Object(
  {
    name: Type.String(),
    id: Type.String(),
    image: Type.String(),
    /** Docker's state: created, running, restarting, exited, paused, dead… */
    state: Type.String(),
    status: Type.Optional(Type.String()),
    restartCount: Type.Integer({ minimum: 0 }),
    exitCode: Type.Optional(Type.Integer()),
    startedAt: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
export type ContainerState = Static<typeof ContainerState>;

export const AppState = Type.Object(
  {
    name: Name,
    revision: Type.Integer({ minimum: 0, maximum: MAX_SAFE }),
    phase: AppPhase,
    message: Type.Optional(Type.String()),
    /** With phase `unknown`: since when the engine could not be reached. */
    unknownSince: Type.Optional(Timestamp),
    /**
     * The new revision waits for its update window (`spec.update.window`): when the window
     * opens, on the device's clock. A staged rollout counts the device's `deviceTimeout` from
     * then, not from when it was told to update.
     */
    heldUntil: Type.Optional(Timestamp),
    containers: Type.Array(ContainerState),
  },
  { additionalProperties: false },
);
export type AppState = Static<typeof AppState>;

export const HostFacts = Type.Object(
  {
    hostname: Type.String(),
    os: Type.String(),
    arch: Type.String(),
    kernel: Type.Optional(Type.String()),
    dockerVersion: Type.Optional(Type.String()),
    agentVersion: Type.String(),
    /** The Node.js runtime the agent runs on (`20.11.1`); absent from agents that predate it. */
    nodeVersion: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);
export type HostFacts = Static<typeof HostFacts>;

/**
 * Where a device's agent upgrade stands. `downloading`, `verifying`, `switching`,
 * `restarting`: the running agent is installing `version`; `confirming`: the new version
 * runs on trial and has not yet reported healthy; `failed`: it was refused before anything
 * switched (a bad checksum, a full disk, no launcher), with why in `message`; `rolled-back`:
 * the new version crashed or did not report healthy in time, and the launcher went back.
 */
export const AGENT_UPGRADE_PHASES = ['downloading', 'verifying', 'switching', 'restarting', 'confirming', 'failed', 'rolled-back'] as const;
export type AgentUpgradePhase = (typeof AGENT_UPGRADE_PHASES)[number];

export const AgentUpgradeReport = Type.Object(
  {
    /** The version being installed, or the one that failed or rolled back. */
    version: AgentVersion,
    /** The desired agent revision this concerns. */
    revision: Revision,
    phase: Type.Union(AGENT_UPGRADE_PHASES.map((phase) => Type.Literal(phase))),
    message: Type.Optional(Type.String({ maxLength: 1024 })),
    /** While downloading: bytes on the device so far, and the whole. */
    bytes: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_SAFE })),
    total: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_SAFE })),
    since: Timestamp,
  },
  { additionalProperties: false },
);
export type AgentUpgradeReport = Static<typeof AgentUpgradeReport>;

/** `…/devices/{id}/state`, retained: what the device observes. */
export const DeviceState = Type.Object(
  {
    deviceId: DeviceId,
    /** The desired revision the agent is converging to (0: none received yet). */
    observedRevision: Type.Integer({ minimum: 0, maximum: MAX_SAFE }),
    reportedAt: Timestamp,
    host: HostFacts,
    /** Labels the agent was started with; operators' labels on the hub override them. */
    labels: Labels,
    apps: Type.Array(AppState),
    /** Why the agent could not reach its container runtime, if it could not. */
    runtimeError: Type.Optional(Type.String()),
    /**
     * The agent's own upgrade, while one is under way or when the desired one failed or
     * rolled back; absent when the agent runs the desired version (or none is desired).
     */
    agentUpgrade: Type.Optional(AgentUpgradeReport),
    /** Every job execution the desired state names, and final ones until it no longer does. */
    jobs: Type.Optional(Type.Array(JobExecutionReport, { maxItems: MAX_JOBS_PER_DEVICE * 2 })),
    /** Images being downloaded, or downloaded and still wanted (shared/schemas/images.ts). */
    images: Type.Optional(Type.Array(ImageDownload, { maxItems: MAX_REPORTED_IMAGES })),
    /** What downloading images cost and saved since the agent's data dir was made; its presence says the agent can prefetch. */
    downloads: Type.Optional(DownloadTotals),
  },
  { additionalProperties: false },
);
export type DeviceState = Static<typeof DeviceState>;

/**
 * `…/devices/{id}/status`, retained; the agent's MQTT will publishes `online: false`.
 * `protocol`, in the will only: the protocol version the agent speaks (shared/protocol-version.ts).
 */
export const DeviceStatus = Type.Object(
  { online: Type.Boolean(), at: Timestamp, protocol: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })) },
  { additionalProperties: false },
);
export type DeviceStatus = Static<typeof DeviceStatus>;

/** `…/devices/{id}/commands`: one-off imperative actions with no desired state. */
export const Command = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 128 }),
    type: Type.String({ minLength: 1, maxLength: 64 }),
    args: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    expiresAt: Timestamp,
  },
  { additionalProperties: false },
);
export type Command = Static<typeof Command>;

export const ErrorBody = Type.Object(
  {
    code: Type.String({ minLength: 1 }),
    message: Type.String(),
    details: Type.Optional(Type.Unknown()),
  },
  { additionalProperties: false },
);
export type ErrorBody = Static<typeof ErrorBody>;

/** `…/devices/{id}/replies`. */
export const CommandReply = Type.Object(
  {
    commandId: Type.String({ minLength: 1, maxLength: 128 }),
    ok: Type.Boolean(),
    result: Type.Optional(Type.Unknown()),
    error: Type.Optional(ErrorBody),
  },
  { additionalProperties: false },
);
export type CommandReply = Static<typeof CommandReply>;

/** `…/devices/{id}/events`. */
export const DeviceEvent = Type.Object(
  {
    seq: Seq,
    ts: Timestamp,
    type: Type.String({ minLength: 1, maxLength: 64 }),
    app: Type.Optional(Name),
    container: Type.Optional(Name),
    message: Type.String(),
  },
  { additionalProperties: false },
);
export type DeviceEvent = Static<typeof DeviceEvent>;

/** `…/api/{clientId}/request`: a backend service calls a hub method over MQTT. */
export const ApiRequest = Type.Object(
  {
    correlationId: Type.String({ minLength: 1, maxLength: 128 }),
    method: Type.String({ minLength: 1, maxLength: 64 }),
    params: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
);
export type ApiRequest = Static<typeof ApiRequest>;

/** `…/api/{clientId}/response`, correlated by `correlationId`. */
export const ApiResponse = Type.Union([
  Type.Object({ correlationId: Type.String(), ok: Type.Literal(true), result: Type.Unknown() }, { additionalProperties: false }),
  Type.Object(
    { correlationId: Type.Union([Type.String(), Type.Null()]), ok: Type.Literal(false), error: ErrorBody },
    { additionalProperties: false },
  ),
]);
export type ApiResponse = Static<typeof ApiResponse>;

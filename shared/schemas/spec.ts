/**
 * The app spec: what an operator applies. Field names follow Docker and
 * Compose (command, entrypoint, ports "8080:80", volumes "name:/path:ro",
 * restartPolicy) so that users can carry their habits over.
 *
 * Schemas are written with TypeBox: each one is a plain JSON Schema object that
 * ajv compiles, and `Static<typeof X>` derives the TypeScript type from that same
 * object, so the type and the runtime check cannot drift apart (unlike
 * hand-written interfaces beside hand-written schemas, or types generated in a
 * separate build step that can go stale).
 */
import { type Static, Type } from '@sinclair/typebox';
import { DEVICE_ID_PATTERN, LABEL_KEY_PATTERN, LABEL_VALUE_PATTERN, NAME_PATTERN } from '../ids.js';
import { DURATION_PATTERN, SIZE_PATTERN } from './units.js';

export const Name = Type.String({ pattern: NAME_PATTERN, description: 'a DNS label', examples: ['sensor-gateway'] });
export const DeviceId = Type.String({ pattern: DEVICE_ID_PATTERN, examples: ['gw-0042', 'pi.roof-1'] });
export const Duration = Type.String({ pattern: DURATION_PATTERN, examples: ['500ms', '5s', '1m'] });
export const Size = Type.String({ pattern: SIZE_PATTERN, examples: ['64m', '1g', '512Mi'] });
export const Labels = Type.Record(Type.String({ pattern: LABEL_KEY_PATTERN }), Type.String({ pattern: LABEL_VALUE_PATTERN }), {
  additionalProperties: false,
});
export type Labels = Static<typeof Labels>;

const NonEmpty = Type.String({ minLength: 1, maxLength: 4096 });
const SecretRef = Type.String({ pattern: NAME_PATTERN });

/** `[ip:]hostPort:containerPort[/proto]` or `containerPort[/proto]` (published on a random host port). */
export const PORT_PATTERN =
  '^(((25[0-5]|2[0-4][0-9]|1?[0-9]{1,2})\\.){3}(25[0-5]|2[0-4][0-9]|1?[0-9]{1,2}):)?[0-9]{1,5}(:[0-9]{1,5})?(/(tcp|udp))?$';
/** `volumeName:/path[:ro|rw]` or `/hostPath:/path[:ro|rw]`. */
export const VOLUME_PATTERN = '^([a-zA-Z0-9][a-zA-Z0-9_.-]*|/[^:]*):/[^:]*(:(ro|rw))?$';
/** `/path[:mount options]`, e.g. `/dev/shm:size=64m`. */
export const TMPFS_PATTERN = '^/[^:]*(:[a-z0-9=,]+)?$';
export const CAPABILITY_PATTERN = '^(CAP_)?[A-Z_]+$|^ALL$';

export const EnvVar = Type.Object(
  {
    name: Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }),
    value: Type.Optional(Type.String({ maxLength: 65536 })),
    fromSecret: Type.Optional(SecretRef),
  },
  { additionalProperties: false },
);
export type EnvVar = Static<typeof EnvVar>;

export const DeviceMapping = Type.Object(
  {
    hostPath: Type.String({ pattern: '^/' }),
    containerPath: Type.Optional(Type.String({ pattern: '^/' })),
    permissions: Type.Optional(Type.String({ pattern: '^[rwm]{1,3}$' })),
  },
  { additionalProperties: false },
);

export const RestartPolicy = Type.Object(
  {
    name: Type.Union([Type.Literal('no'), Type.Literal('always'), Type.Literal('unless-stopped'), Type.Literal('on-failure')]),
    maximumRetryCount: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);

export const Resources = Type.Object(
  {
    memory: Type.Optional(Size),
    cpus: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1024 })),
  },
  { additionalProperties: false },
);

/** One probe kind per healthcheck; the agent's health gate uses http/tcp, Docker runs exec. */
export const Healthcheck = Type.Object(
  {
    http: Type.Optional(Type.String({ pattern: '^https?://' })),
    tcp: Type.Optional(Type.String({ pattern: '^[^:]+:[0-9]{1,5}$' })),
    exec: Type.Optional(Type.Array(NonEmpty, { minItems: 1 })),
    interval: Type.Optional(Duration),
    timeout: Type.Optional(Duration),
    retries: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
    startPeriod: Type.Optional(Duration),
  },
  { additionalProperties: false },
);

export const RegistryAuth = Type.Object(
  {
    username: NonEmpty,
    password: Type.Optional(Type.String()),
    fromSecret: Type.Optional(SecretRef),
  },
  { additionalProperties: false },
);
export type RegistryAuth = Static<typeof RegistryAuth>;

/** An absolute path without `.` or `..` segments (checked in app-spec.ts) and no trailing slash. */
export const SECRET_PATH_PATTERN = '^(/[A-Za-z0-9._@+-]+)+$';

/**
 * A secret as a file in the container, Compose's `secrets:` habit: at `path`,
 * default `/run/secrets/<name>`, mode 0400. The agent writes it into the
 * created container before it starts (agent/runtime/secret-files.ts).
 */
export const SecretFile = Type.Object(
  {
    name: SecretRef,
    path: Type.Optional(Type.String({ pattern: SECRET_PATH_PATTERN, maxLength: 255, examples: ['/run/secrets/db-password'] })),
    /** The value's bytes, base64: set by the hub in a device's desired document only, never in an app spec. */
    data: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9+/]*={0,2}$' })),
  },
  { additionalProperties: false },
);
export type SecretFile = Static<typeof SecretFile>;

/**
 * Compose's `depends_on` conditions: `started` (the dependency's container is running),
 * `healthy` (its healthcheck passes: it must have one), `completed` (it exited 0: its
 * restartPolicy must be `no` or `on-failure`).
 */
export const DEPENDENCY_CONDITIONS = ['started', 'healthy', 'completed'] as const;
export const DependencyCondition = Type.Union(DEPENDENCY_CONDITIONS.map((c) => Type.Literal(c)));
export type DependencyCondition = Static<typeof DependencyCondition>;

export const ContainerSpec = Type.Object(
  {
    name: Name,
    image: Type.String({ pattern: '^[^\\s]+$', minLength: 1, maxLength: 512 }),
    entrypoint: Type.Optional(Type.Array(Type.String())),
    command: Type.Optional(Type.Array(Type.String())),
    args: Type.Optional(Type.Array(Type.String())),
    workDir: Type.Optional(Type.String({ pattern: '^/' })),
    user: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?$' })),
    env: Type.Optional(Type.Array(EnvVar)),
    ports: Type.Optional(Type.Array(Type.String({ pattern: PORT_PATTERN, examples: ['8080:80', '127.0.0.1:53:53/udp', '80'] }))),
    volumes: Type.Optional(Type.Array(Type.String({ pattern: VOLUME_PATTERN, examples: ['app-data:/data', '/etc/app:/etc/app:ro'] }))),
    devices: Type.Optional(Type.Array(DeviceMapping)),
    tmpfs: Type.Optional(Type.Array(Type.String({ pattern: TMPFS_PATTERN, examples: ['/tmp', '/dev/shm:size=64m'] }))),
    shmSize: Type.Optional(Size),
    gpus: Type.Optional(Type.Union([Type.Literal('all'), Type.Integer({ minimum: 1 })])),
    restartPolicy: Type.Optional(RestartPolicy),
    resources: Type.Optional(Resources),
    privileged: Type.Optional(Type.Boolean()),
    capAdd: Type.Optional(Type.Array(Type.String({ pattern: CAPABILITY_PATTERN }))),
    capDrop: Type.Optional(Type.Array(Type.String({ pattern: CAPABILITY_PATTERN }))),
    networkMode: Type.Optional(Type.String({ pattern: '^[a-zA-Z0-9][a-zA-Z0-9_.:-]*$' })),
    /** DNS names of the container on its user-defined network (`networkMode`), as `docker run --network-alias`. */
    networkAliases: Type.Optional(Type.Array(Name, { minItems: 1 })),
    labels: Type.Optional(Type.Record(Type.String({ pattern: '^(?!flotilla\\.)[A-Za-z0-9._/-]+$' }), Type.String())),
    healthcheck: Type.Optional(Healthcheck),
    auth: Type.Optional(RegistryAuth),
    secrets: Type.Optional(Type.Array(SecretFile, { maxItems: 64 })),
    /**
     * Containers of the same app this one starts after, each with the condition it waits for
     * (`{db: healthy, cache: started}`). The agent starts an app's containers in this order and
     * swaps them in this order on an update; a cycle is refused at apply time.
     */
    dependsOn: Type.Optional(
      Type.Record(Type.String({ pattern: NAME_PATTERN }), DependencyCondition, { additionalProperties: false, minProperties: 1 }),
    ),
  },
  { additionalProperties: false },
);
export type ContainerSpec = Static<typeof ContainerSpec>;

/**
 * Run to completion, one after the other, before the app's containers start (a schema
 * migration, a firmware check). Same fields as a container without what only a long-running
 * one has: a failing one (non-zero exit) fails the revision's health gate.
 */
export const InitContainerSpec = Type.Omit(ContainerSpec, ['ports', 'restartPolicy', 'healthcheck', 'dependsOn', 'networkAliases'], {
  additionalProperties: false,
});
export type InitContainerSpec = Static<typeof InitContainerSpec>;

/**
 * When init containers run: `revision` (default) once for each new revision the device swaps
 * in, before its containers start; `start` also each time the agent (re)starts the app's
 * containers from nothing (a device reboot, a container removed by hand).
 */
export const InitPolicy = Type.Union([Type.Literal('revision'), Type.Literal('start')]);
export type InitPolicy = Static<typeof InitPolicy>;

/** A weekday, or a range of them (`mon-fri`; `sat-mon` wraps). */
export const WEEKDAY_PATTERN = '^(mon|tue|wed|thu|fri|sat|sun)(-(mon|tue|wed|thu|fri|sat|sun))?$';
/** `HH:MM` or `HH:MM:SS`, 24-hour. */
export const CLOCK_TIME_PATTERN = '^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$';

/**
 * When a device may do disruptive work (swap an app to a new revision, start a
 * job), evaluated by the agent on its own clock (shared/update-window.ts), so a
 * device offline for a week still does it in its own night. `to` before `from`
 * crosses midnight (22:00 to 04:00), and `days` name the day the window opens.
 */
export const UpdateWindow = Type.Object(
  {
    /** The days the window opens; absent: every day. */
    days: Type.Optional(Type.Array(Type.String({ pattern: WEEKDAY_PATTERN, examples: ['mon-fri', 'sat'] }), { minItems: 1, maxItems: 7 })),
    from: Type.String({ pattern: CLOCK_TIME_PATTERN, examples: ['02:00'] }),
    to: Type.String({ pattern: CLOCK_TIME_PATTERN, examples: ['04:00'] }),
    /** An IANA time zone (`Europe/Berlin`); absent: the device's own (its TZ, else UTC). */
    timezone: Type.Optional(Type.String({ minLength: 1, maxLength: 64, examples: ['Europe/Berlin', 'UTC'] })),
  },
  { additionalProperties: false },
);
export type UpdateWindow = Static<typeof UpdateWindow>;

export const UpdatePolicy = Type.Object(
  {
    strategy: Type.Optional(
      Type.Union([Type.Literal('download-then-kill'), Type.Literal('kill-then-download'), Type.Literal('start-then-kill')]),
    ),
    /** How long a new version may take to become healthy before it is rolled back (default 60s). */
    healthTimeout: Type.Optional(Duration),
    /** Without a health check, a new version counts as healthy after running this long without a restart (default 10). */
    minReadySeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600 })),
    rollback: Type.Optional(Type.Union([Type.Literal('auto'), Type.Literal('manual')])),
    /** A new revision is pulled at once but swapped in only inside this window (unless forced: `flotilla rollout force`). */
    window: Type.Optional(UpdateWindow),
    /**
     * How images reach the device. `agent` (default): the agent downloads them itself, resumably
     * and within the device's downlink rate, and hands them to the engine; `engine`: the engine's
     * own pull, as `docker pull` does (which starts a broken layer over).
     */
    pull: Type.Optional(Type.Union([Type.Literal('agent'), Type.Literal('engine')])),
  },
  { additionalProperties: false },
);
export type UpdatePolicy = Static<typeof UpdatePolicy>;

/**
 * How a new revision reaches the fleet: a canary first, then batches, each
 * waiting for the previous one to report healthy. Absent: every device gets
 * the new revision at once.
 */
export const RolloutPolicy = Type.Object(
  {
    /** Devices updated first: a count, or a share of the matched devices ("10%", rounded up). Default 0: no canary stage. */
    canary: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.String({ pattern: '^(100|[1-9]?[0-9])%$' })])),
    /** After a healthy canary, wait for `flotilla rollout resume`. */
    pauseAfterCanary: Type.Optional(Type.Boolean()),
    /** Devices updated together after the canary; the next batch starts when this one has settled. Default 1. */
    batchSize: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Instead of batches: at most this many devices updating at any moment (a sliding window). */
    maxUnavailable: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Failed devices that pause the rollout and send the failed devices back to their previous revision. Default 1. */
    failureThreshold: Type.Optional(Type.Integer({ minimum: 1 })),
    /** A device not healthy at the new revision after this long counts as failed (default 10m). */
    deviceTimeout: Type.Optional(Duration),
  },
  { additionalProperties: false },
);
export type RolloutPolicy = Static<typeof RolloutPolicy>;

/** `selectors: {}` selects every device; omitting both selects none, so scheduling is explicit. */
export const Scheduling = Type.Object(
  {
    selectors: Type.Optional(Labels),
    devices: Type.Optional(Type.Array(DeviceId, { uniqueItems: true })),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type Scheduling = Static<typeof Scheduling>;

export const AppSpec = Type.Object(
  {
    name: Name,
    scheduling: Scheduling,
    spec: Type.Object(
      {
        containers: Type.Array(ContainerSpec, { minItems: 1, maxItems: 32 }),
        initContainers: Type.Optional(Type.Array(InitContainerSpec, { minItems: 1, maxItems: 8 })),
        initPolicy: Type.Optional(InitPolicy),
        update: Type.Optional(UpdatePolicy),
        rollout: Type.Optional(RolloutPolicy),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
export type AppSpec = Static<typeof AppSpec>;

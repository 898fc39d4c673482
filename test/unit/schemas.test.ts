import { describe, expect, it } from 'vitest';
import {
  ApiRequest,
  Command,
  CommandReply,
  DesiredState,
  DeviceEvent,
  DeviceState,
  DeviceStatus,
  decode,
  formatIssues,
  LogBatch,
  Metrics,
  validate,
  validateAppSpec,
} from '../../shared/index.js';

const validSpec = () => ({
  name: 'sensor-gateway',
  scheduling: { selectors: { site: 'roof', arch: 'arm64' } },
  spec: {
    containers: [
      {
        name: 'gateway',
        image: 'registry.local/sensor-gateway:1.4.2',
        command: ['/app/gateway'],
        env: [
          { name: 'LOG_LEVEL', value: 'info' },
          { name: 'TOKEN', fromSecret: 'gw-token' },
        ],
        ports: ['8080:80', '127.0.0.1:9000:9000/udp', '53'],
        volumes: ['gateway-data:/data', '/etc/gateway:/etc/gateway:ro'],
        devices: [{ hostPath: '/dev/ttyACM0', containerPath: '/dev/ttyACM0' }],
        tmpfs: ['/dev/shm:size=64m'],
        shmSize: '64m',
        gpus: 'all',
        restartPolicy: { name: 'unless-stopped' },
        resources: { memory: '128m', cpus: 0.5 },
        privileged: false,
        capAdd: ['NET_ADMIN'],
        networkMode: 'bridge',
        healthcheck: { http: 'http://localhost:80/healthz', interval: '5s', timeout: '2s', retries: 3 },
        auth: { username: 'ci', fromSecret: 'registry-password' },
      },
    ],
    update: { strategy: 'download-then-kill', healthTimeout: '60s', rollback: 'auto' },
  },
});

/** Returns the formatted issues for a spec after `mutate`, so each case reads as "this field → this message". */
function issuesAfter(mutate: (spec: ReturnType<typeof validSpec>) => void): string {
  const spec = validSpec();
  mutate(spec);
  const result = validateAppSpec(spec);
  expect(result.ok).toBe(false);
  return result.ok ? '' : formatIssues(result.issues);
}

describe('app spec', () => {
  it('accepts the DESIGN.md example with every field', () => {
    const result = validateAppSpec(validSpec());
    expect(result.ok ? 'ok' : formatIssues(result.issues)).toBe('ok');
  });

  it.each([
    ['a bad port', (s: any) => (s.spec.containers[0].ports[1] = '80:80:tcp'), /^spec\.containers\[0\]\.ports\[1\]: must match pattern/],
    [
      'a port out of range',
      (s: any) => (s.spec.containers[0].ports = ['70000:80']),
      /^spec\.containers\[0\]\.ports\[0\]: port 70000 is outside 1-65535$/,
    ],
    ['a missing image', (s: any) => delete s.spec.containers[0].image, /^spec\.containers\[0\]\.image: is required$/],
    [
      "a tcp check on a container that shares another container's network",
      (s: any) => {
        s.spec.containers[0].networkMode = 'container:shop_db';
        s.spec.containers[0].healthcheck = { tcp: 'localhost:8080' };
      },
      /^spec\.containers\[0\]\.healthcheck\.tcp: is probed by the agent at the container's own address, and with networkMode container:shop_db it has none: use an exec check .*, or put the check on the container whose network it shares$/,
    ],
    [
      'an http check on a container without a network',
      (s: any) => {
        s.spec.containers[0].networkMode = 'none';
        s.spec.containers[0].healthcheck = { http: 'http://localhost:8080/healthz' };
      },
      /^spec\.containers\[0\]\.healthcheck\.http: is probed by the agent at the container's own address, and with networkMode none it has none: use an exec check \(exec: \[wget, -q, -O-, http:\/\/localhost:PORT\/\], run inside the container\)$/,
    ],
    [
      'an image the engine would refuse',
      (s: any) => (s.spec.containers[0].image = 'registry.local/Sensor:1'),
      /^spec\.containers\[0\]\.image: is not an image reference Docker accepts: the repository name must be lowercase \("Sensor"\)$/,
    ],
    [
      'an unknown field',
      (s: any) => (s.spec.containers[0].imagePullPolicy = 'Always'),
      /^spec\.containers\[0\]\.imagePullPolicy: is not a known field$/,
    ],
    ['an upper-case app name', (s: any) => (s.name = 'Sensor'), /^name: must match pattern/],
    [
      'an unknown restart policy',
      (s: any) => (s.spec.containers[0].restartPolicy.name = 'sometimes'),
      /^spec\.containers\[0\]\.restartPolicy\.name: must be one of "no", "always", "unless-stopped", "on-failure"$/,
    ],
    [
      'a bad memory size',
      (s: any) => (s.spec.containers[0].resources.memory = 'lots'),
      /^spec\.containers\[0\]\.resources\.memory: must match pattern/,
    ],
    ['a bad volume', (s: any) => (s.spec.containers[0].volumes = ['data']), /^spec\.containers\[0\]\.volumes\[0\]: must match pattern/],
    [
      'an env var with both value and secret',
      (s: any) => (s.spec.containers[0].env[0].fromSecret = 'x'),
      /^spec\.containers\[0\]\.env\[0\]: must have exactly one of "value" or "fromSecret"$/,
    ],
    [
      'duplicate container names',
      (s: any) => s.spec.containers.push({ ...s.spec.containers[0], ports: [] }),
      /^spec\.containers\[1\]\.name: duplicate container name "gateway"$/,
    ],
    [
      'a host port published twice',
      (s: any) => s.spec.containers.push({ name: 'other', image: 'x', ports: ['8080:81'] }),
      /^spec\.containers\[1\]\.ports\[0\]: host port 8080\/tcp is also published by spec\.containers\[0\]\.ports\[0\]$/,
    ],
    ['no scheduling', (s: any) => delete s.scheduling, /^scheduling: is required$/],
    ['empty scheduling', (s: any) => (s.scheduling = {}), /^scheduling: must NOT have fewer than 1 properties$/],
    ['no containers', (s: any) => (s.spec.containers = []), /^spec\.containers: must NOT have fewer than 1 items$/],
    [
      'two healthcheck kinds',
      (s: any) => (s.spec.containers[0].healthcheck.tcp = 'localhost:80'),
      /^spec\.containers\[0\]\.healthcheck: must have exactly one of "http", "tcp" or "exec"$/,
    ],
    ['a device id that is a wildcard', (s: any) => (s.scheduling = { devices: ['+'] }), /^scheduling\.devices\[0\]: must match pattern/],
    [
      'an unknown update strategy',
      (s: any) => (s.spec.update.strategy = 'yolo'),
      /^spec\.update\.strategy: must be one of "download-then-kill", "kill-then-download", "start-then-kill"$/,
    ],
  ])('rejects %s, naming the field', (_what, mutate, expected) => {
    expect(issuesAfter(mutate)).toMatch(expected);
  });

  it('refuses start-then-kill where two versions side by side would clash on a host port', () => {
    const text = issuesAfter((s: any) => {
      s.spec.update.strategy = 'start-then-kill';
    });
    expect(text).toBe(
      'spec.update.strategy: start-then-kill runs the old and the new version side by side, so the host port of spec.containers[0].ports[0] would clash: use download-then-kill, or publish no host port',
    );
  });

  it('reports every problem at once', () => {
    const text = issuesAfter((s: any) => {
      s.spec.containers[0].ports = ['nope'];
      delete s.spec.containers[0].image;
    });
    expect(text.split('\n')).toHaveLength(2);
  });
});

const now = new Date().toISOString();

describe('message schemas', () => {
  it.each([
    ['DesiredState', DesiredState, { deviceId: 'd1', revision: 0, issuedAt: now, apps: [] }, /^revision: must be >= 1$/],
    [
      'DesiredState app',
      DesiredState,
      { deviceId: 'd1', revision: 1, issuedAt: now, apps: [{ name: 'a', revision: 1, containers: [{ name: 'c' }] }] },
      /^apps\[0\]\.containers\[0\]\.image: is required$/,
    ],
    [
      'DeviceState',
      DeviceState,
      { deviceId: 'd1', observedRevision: 0, reportedAt: now, host: {}, labels: {}, apps: [] },
      /^host\.hostname: is required$/m,
    ],
    [
      'DeviceState phase',
      DeviceState,
      {
        deviceId: 'd1',
        observedRevision: 0,
        reportedAt: now,
        host: { hostname: 'h', os: 'linux', arch: 'arm64', agentVersion: '1' },
        labels: {},
        apps: [{ name: 'a', revision: 1, phase: 'dancing', containers: [] }],
      },
      /^apps\[0\]\.phase: must be one of "pending"/,
    ],
    ['DeviceStatus', DeviceStatus, { online: 'yes', at: now }, /^online: must be boolean$/],
    ['DeviceStatus time', DeviceStatus, { online: true, at: 'yesterday' }, /^at: must match format "date-time"$/],
    ['ApiRequest', ApiRequest, { method: 'apps.list' }, /^correlationId: is required$/],
    ['Command', Command, { id: 'c1', type: 'restart' }, /^expiresAt: is required$/],
    ['CommandReply', CommandReply, { commandId: 'c1', ok: 'no' }, /^ok: must be boolean$/],
    ['DeviceEvent', DeviceEvent, { seq: -1, ts: now, type: 'started', message: '' }, /^seq: must be >= 0$/],
    [
      'LogBatch',
      LogBatch,
      { seq: 1, lines: [{ app: 'a', container: 'c', stream: 'stdin', ts: now, line: 'x' }] },
      /^lines\[0\]\.stream: must be one of "stdout", "stderr", "system"$/,
    ],
    ['Metrics', Metrics, { seq: 1, ts: now, host: { cpuPercent: 'high' }, containers: [] }, /^host\.cpuPercent: must be number$/m],
  ])('%s rejects a bad payload naming the field', (_name, schema, payload, expected) => {
    const result = validate(schema, payload);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(formatIssues(result.issues)).toMatch(expected);
  });

  it('decode reports malformed JSON at the document level', () => {
    const result = decode(DeviceStatus, Buffer.from('{"online": tru'));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(formatIssues(result.issues)).toMatch(/^\(document\): is not valid JSON/);
  });

  it('decode accepts a valid payload', () => {
    expect(decode(DeviceStatus, JSON.stringify({ online: true, at: now }))).toEqual({ ok: true, value: { online: true, at: now } });
  });
});

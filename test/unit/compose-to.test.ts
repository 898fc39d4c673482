/**
 * The Compose export mapping (cli/compose/to-compose.ts), field by field: what a spec says and
 * the Compose service that says the same, then the file's text as docker-compose reads it
 * (YAML 1.1 quoting) with its comments. The integration test feeds the files to the real
 * docker-compose.
 */
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { composeDuration, composeSize, composeYaml, toCompose } from '../../cli/compose/to-compose.js';
import { validateAppSpec } from '../../shared/app-spec.js';
import type { AppSpec, ContainerSpec } from '../../shared/schemas/spec.js';

function app(containers: ContainerSpec[], spec: Partial<AppSpec['spec']> = {}): AppSpec {
  const made: AppSpec = { name: 'shop', scheduling: { selectors: { site: 'lab' } }, spec: { containers, ...spec } };
  // Every spec here is one the hub would take: the mapping is never tested on what cannot be applied.
  expect(validateAppSpec(made)).toEqual({ ok: true, value: made });
  return made;
}

function one(container: Omit<ContainerSpec, 'name' | 'image'>): Record<string, unknown> {
  const doc = toCompose(app([{ name: 'web', image: 'registry.local/web:1', ...container }]));
  return doc.services.web as unknown as Record<string, unknown>;
}

describe('a container as a Compose service', () => {
  it('keeps the image and writes Flotilla’s default restart policy out', () => {
    expect(one({})).toEqual({ image: 'registry.local/web:1', restart: 'unless-stopped' });
  });

  it('maps entrypoint, command, user and working_dir; args follow command as Docker runs them', () => {
    expect(
      one({ entrypoint: ['/bin/sh', '-c'], command: ['serve'], args: ['--port', '80'], user: '1000:1000', workDir: '/app' }),
    ).toMatchObject({
      entrypoint: ['/bin/sh', '-c'],
      command: ['serve', '--port', '80'],
      user: '1000:1000',
      working_dir: '/app',
    });
    expect(one({ args: ['--verbose'] }).command).toEqual(['--verbose']);
  });

  it('writes literal env as a map and keeps env from hub secrets under x-flotilla', () => {
    const service = one({
      env: [
        { name: 'LOG_LEVEL', value: 'info' },
        { name: 'EMPTY', value: '' },
        { name: 'TOKEN', fromSecret: 'gw-token' },
      ],
    });
    expect(service.environment).toEqual({ LOG_LEVEL: 'info', EMPTY: '' });
    expect(service['x-flotilla']).toEqual({ env: [{ name: 'TOKEN', fromSecret: 'gw-token' }] });
  });

  it('escapes every $ so that neither docker-compose nor convert reads a variable', () => {
    const service = one({
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Compose's ${VAR}, which must not be read as one
      command: ['sh', '-c', 'echo $HOME ${PATH}'],
      env: [
        { name: 'PRICE', value: '$5' },
        { name: 'TOKEN', fromSecret: 'gw-token' },
      ],
      healthcheck: { http: 'http://localhost:80/?q=$x' },
    });
    expect(service.command).toEqual(['sh', '-c', 'echo $$HOME $${PATH}']);
    expect(service.environment).toEqual({ PRICE: '$$5' });
    expect(service.healthcheck).toEqual({ test: ['CMD-SHELL', "wget -q -O /dev/null 'http://localhost:80/?q=$$x' || exit 1"] });
    expect(service['x-flotilla']).toMatchObject({ healthcheck: { http: 'http://localhost:80/?q=$$x' } });
  });

  it('keeps ports, volumes and tmpfs in the short syntax both share', () => {
    expect(
      one({
        ports: ['8080:80', '127.0.0.1:53:53/udp', '9000'],
        volumes: ['web-data:/data', '/etc/web:/etc/web:ro'],
        tmpfs: ['/tmp', '/dev/shm:size=64m'],
      }),
    ).toMatchObject({
      ports: ['8080:80', '127.0.0.1:53:53/udp', '9000'],
      volumes: ['web-data:/data', '/etc/web:/etc/web:ro'],
      tmpfs: ['/tmp', '/dev/shm:size=64m'],
    });
  });

  it('declares named volumes at the top level, bind mounts not', () => {
    const doc = toCompose(
      app([
        { name: 'a', image: 'x', volumes: ['data:/data', '/srv:/srv'] },
        { name: 'b', image: 'x', volumes: ['data:/data:ro', 'logs:/logs'] },
      ]),
    );
    expect(doc.volumes).toEqual({ data: {}, logs: {} });
  });

  it('writes devices as host:container[:permissions]', () => {
    expect(
      one({
        devices: [{ hostPath: '/dev/ttyACM0' }, { hostPath: '/dev/ttyUSB0', containerPath: '/dev/modem', permissions: 'rw' }],
      }).devices,
    ).toEqual(['/dev/ttyACM0:/dev/ttyACM0', '/dev/ttyUSB0:/dev/modem:rw']);
  });

  it('maps shm_size, mem_limit and cpus in docker-compose’s units', () => {
    expect(one({ shmSize: '64Mi', resources: { memory: '1Gi', cpus: 0.5 } })).toMatchObject({
      shm_size: '64m',
      mem_limit: '1g',
      cpus: 0.5,
    });
    expect(composeSize('128m')).toBe('128m');
    expect(composeSize('512Ki')).toBe('512k');
    expect(composeSize('1.5GB')).toBe('1.5GB');
    expect(composeSize('1048576')).toBe('1048576');
  });

  it('maps privileged, cap_add, cap_drop, labels', () => {
    expect(one({ privileged: true, capAdd: ['NET_ADMIN'], capDrop: ['MKNOD'], labels: { 'com.example.team': 'iot' } })).toMatchObject({
      privileged: true,
      cap_add: ['NET_ADMIN'],
      cap_drop: ['MKNOD'],
      labels: { 'com.example.team': 'iot' },
    });
  });

  it('maps every restart policy', () => {
    expect(one({ restartPolicy: { name: 'no' } }).restart).toBe('no');
    expect(one({ restartPolicy: { name: 'always' } }).restart).toBe('always');
    expect(one({ restartPolicy: { name: 'unless-stopped' } }).restart).toBe('unless-stopped');
    expect(one({ restartPolicy: { name: 'on-failure' } }).restart).toBe('on-failure');
    expect(one({ restartPolicy: { name: 'on-failure', maximumRetryCount: 5 } }).restart).toBe('on-failure:5');
  });

  it('writes Docker’s network modes as network_mode, and a device network as an external network with aliases', () => {
    expect(one({ networkMode: 'host' }).network_mode).toBe('host');
    expect(one({ networkMode: 'container:other_main' }).network_mode).toBe('container:other_main');
    const doc = toCompose(app([{ name: 'web', image: 'x', networkMode: 'plant-net', networkAliases: ['api', 'web'] }]));
    expect(doc.services.web).toMatchObject({ networks: { 'plant-net': { aliases: ['api', 'web'] } } });
    expect(doc.services.web?.network_mode).toBeUndefined();
    expect(doc.networks).toEqual({ 'plant-net': { external: true } });
    expect(toCompose(app([{ name: 'web', image: 'x', networkMode: 'plant-net' }])).services.web?.networks).toEqual({ 'plant-net': {} });
    expect(toCompose(app([{ name: 'web', image: 'x' }])).networks).toBeUndefined();
  });

  it('maps an exec healthcheck to CMD with its timings, days as hours', () => {
    expect(
      one({ healthcheck: { exec: ['/app/health', '--quick'], interval: '5s', timeout: '500ms', retries: 3, startPeriod: '1d' } }),
    ).toMatchObject({
      healthcheck: { test: ['CMD', '/app/health', '--quick'], interval: '5s', timeout: '500ms', retries: 3, start_period: '24h' },
    });
    expect(one({ healthcheck: { exec: ['true'] } })['x-flotilla']).toBeUndefined();
    expect(composeDuration('2h')).toBe('2h');
    expect(composeDuration('1.5d')).toBe('36h');
  });

  it('runs http and tcp probes inside the container and keeps the probe under x-flotilla', () => {
    const http = one({ healthcheck: { http: 'http://localhost:80/healthz?full=1', interval: '5s' } });
    expect(http.healthcheck).toEqual({
      test: ['CMD-SHELL', "wget -q -O /dev/null 'http://localhost:80/healthz?full=1' || exit 1"],
      interval: '5s',
    });
    expect(http['x-flotilla']).toEqual({ healthcheck: { http: 'http://localhost:80/healthz?full=1', interval: '5s' } });
    const tcp = one({ healthcheck: { tcp: 'localhost:5432' } });
    expect(tcp.healthcheck).toEqual({ test: ['CMD-SHELL', 'nc -z localhost 5432 || exit 1'] });
    expect(tcp['x-flotilla']).toEqual({ healthcheck: { tcp: 'localhost:5432' } });
  });

  it('maps secrets to Compose file secrets declared beside the file, with a target only where the spec moves it', () => {
    const doc = toCompose(
      app([
        { name: 'web', image: 'x', secrets: [{ name: 'tls-key' }, { name: 'db-password', path: '/etc/web/db.pass' }] },
        { name: 'worker', image: 'x', secrets: [{ name: 'db-password' }] },
      ]),
    );
    expect(doc.services.web?.secrets).toEqual(['tls-key', { source: 'db-password', target: '/etc/web/db.pass' }]);
    expect(doc.secrets).toEqual({ 'tls-key': { file: './secrets/tls-key' }, 'db-password': { file: './secrets/db-password' } });
  });

  it('keeps registry auth and gpus under x-flotilla', () => {
    expect(one({ auth: { username: 'ci', fromSecret: 'registry-password' }, gpus: 'all' })['x-flotilla']).toEqual({
      auth: { username: 'ci', fromSecret: 'registry-password' },
      gpus: 'all',
    });
  });
});

describe('start order and init containers', () => {
  const spec = app(
    [
      { name: 'db', image: 'postgres:16', healthcheck: { exec: ['pg_isready'] } },
      { name: 'seed', image: 'x', restartPolicy: { name: 'no' } },
      { name: 'web', image: 'x', dependsOn: { db: 'healthy', seed: 'completed' } },
      { name: 'cache', image: 'x', dependsOn: { web: 'started' } },
    ],
    {
      initContainers: [
        { name: 'migrate', image: 'x', command: ['migrate'] },
        { name: 'check-firmware', image: 'y' },
      ],
      initPolicy: 'start',
    },
  );
  const doc = toCompose(spec);

  it('writes each condition in the long depends_on form', () => {
    expect(doc.services.web?.depends_on).toMatchObject({
      db: { condition: 'service_healthy' },
      seed: { condition: 'service_completed_successfully' },
    });
    expect(doc.services.cache?.depends_on).toMatchObject({ web: { condition: 'service_started' } });
  });

  it('makes init containers services that run once, in order, before every app service', () => {
    expect(Object.keys(doc.services)).toEqual(['migrate', 'check-firmware', 'db', 'seed', 'web', 'cache']);
    expect(doc.services.migrate).toEqual({ image: 'x', command: ['migrate'], restart: 'no', 'x-flotilla': { init: true } });
    expect(doc.services['check-firmware']).toEqual({
      image: 'y',
      restart: 'no',
      depends_on: { migrate: { condition: 'service_completed_successfully' } },
      'x-flotilla': { init: true },
    });
    const initDone = {
      migrate: { condition: 'service_completed_successfully' },
      'check-firmware': { condition: 'service_completed_successfully' },
    };
    expect(doc.services.db?.depends_on).toEqual(initDone);
    expect(doc.services.web?.depends_on).toEqual({
      ...initDone,
      db: { condition: 'service_healthy' },
      seed: { condition: 'service_completed_successfully' },
    });
    expect(doc['x-flotilla']).toMatchObject({ initPolicy: 'start' });
    expect(doc.services.db?.['x-flotilla']).toBeUndefined();
  });

  it('an app without init containers or dependencies has no depends_on', () => {
    expect(toCompose(app([{ name: 'a', image: 'x' }])).services.a?.depends_on).toBeUndefined();
  });
});

describe('what only Flotilla follows', () => {
  it('keeps the name, scheduling, update and rollout under the top-level x-flotilla', () => {
    const doc = toCompose(
      app([{ name: 'a', image: 'x' }], {
        update: { strategy: 'start-then-kill', healthTimeout: '90s' },
        rollout: { canary: 1, pauseAfterCanary: true },
      }),
    );
    expect(doc['x-flotilla']).toEqual({
      name: 'shop',
      scheduling: { selectors: { site: 'lab' } },
      update: { strategy: 'start-then-kill', healthTimeout: '90s' },
      rollout: { canary: 1, pauseAfterCanary: true },
    });
  });
});

describe('the file’s text', () => {
  const spec = app(
    [
      {
        name: 'dns',
        image: 'x',
        ports: ['53:53/udp', '22:22'],
        env: [
          { name: 'ENABLED', value: 'no' },
          { name: 'TOKEN', fromSecret: 'dns-token' },
        ],
        healthcheck: { tcp: 'localhost:53' },
        secrets: [{ name: 'zone-key' }],
        restartPolicy: { name: 'no' },
      },
    ],
    { initContainers: [{ name: 'prepare', image: 'x' }] },
  );
  const text = composeYaml(spec, 7);

  it('reads back as the document, strings that YAML 1.1 would take for numbers or booleans quoted', () => {
    expect(parse(text, { version: '1.1' })).toEqual(toCompose(spec));
    expect(text).toContain('restart: "no"');
    expect(text).toContain('- "22:22"');
    expect(text).toContain('ENABLED: "no"');
  });

  it('names the app and says where each missing value comes from', () => {
    expect(text.startsWith('# Flotilla app shop revision 7, as a Compose file')).toBe(true);
    expect(text).toMatch(/# The values live in the hub \(flotilla secret set NAME\).*\nsecrets:\n/);
    expect(text).toMatch(/# TOKEN: set by the hub from its secrets, not by Compose\.\n\s+x-flotilla:/);
    expect(text).toMatch(/# The agent probes this from the host.*\n\s+healthcheck:/);
    expect(text).toMatch(/# An init container: runs to completion before the app starts\.\n\s+prepare:/);
  });
});

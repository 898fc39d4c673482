/**
 * A Compose file deployed as it is gives the same containers as the Flotilla spec written by
 * hand: a real hub process, two real agents on this machine's Docker Engine (one per app, each
 * with its own labels and container name prefix), the real CLI. One device gets the Compose file
 * through `apply -f docker-compose.yml --name … --selector …`, the other the equivalent spec;
 * Docker's own `inspect` of each pair of containers must agree on everything but the labels
 * that name the app, device and revision: image, command, entrypoint, environment, ports,
 * mounts, tmpfs, restart policy, healthcheck, user labels, and the agent's spec hash (the same
 * hash means the agent was handed the very same container spec). Both apps have an init
 * container (in the Compose file, a service marked `x-flotilla: {init: true}`) that appends a
 * line to the volume they share, so the log holds one line from each.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { AppSpec } from '../../shared/index.js';
import { type HubProcess, runCli, scratchDir, startAgentProcess, startHubProcess, stopAll } from '../support/processes.js';
import { waitFor } from '../support/wait.js';
import { containerIds, docker, removeContainersAndVolumes } from './support/docker-cli.js';
import { describeDocker } from './support/engine.js';
import { ensureTestImages } from './support/images.js';

const suffix = Math.random().toString(36).slice(2, 8);
const fromCompose = `e2e-compose-${suffix}`;
const fromSpec = `e2e-spec-${suffix}`;
const volume = `e2e-compose-data-${suffix}`;
const devices = { compose: `e2e-compose-dev-${suffix}`, spec: `e2e-spec-dev-${suffix}` };

/** The parts of `docker inspect` a container's spec decides. */
interface Container {
  Name: string;
  State: { Running: boolean };
  Config: {
    Image: string;
    Cmd: string[] | null;
    Entrypoint: string[] | null;
    Env: string[];
    Labels: Record<string, string>;
    Healthcheck?: { Test: string[]; Interval?: number; Retries?: number };
  };
  HostConfig: {
    PortBindings: Record<string, { HostIp: string; HostPort: string }[]> | null;
    Tmpfs: Record<string, string> | null;
    RestartPolicy: { Name: string; MaximumRetryCount: number };
  };
  Mounts: { Type: string; Name?: string; Source: string; Destination: string; RW: boolean }[];
}

/** The running containers of an app, by their container name in the app. */
async function containersOf(app: string): Promise<Record<string, Container>> {
  const ids = await containerIds(`flotilla.app=${app}`);
  if (ids.length === 0) return {};
  const all = JSON.parse(await docker('inspect', ...ids)) as Container[];
  return Object.fromEntries(all.filter((c) => c.State.Running).map((c) => [c.Config.Labels['flotilla.container']!, c]));
}

/** What must be equal between the two apps' containers: everything but the names and the labels naming app, device and revision. */
function comparable(container: Container): unknown {
  const ownLabels = ['flotilla.app', 'flotilla.device', 'flotilla.app-revision'];
  const labels = Object.fromEntries(Object.entries(container.Config.Labels).filter(([key]) => !ownLabels.includes(key)));
  return {
    image: container.Config.Image,
    cmd: container.Config.Cmd,
    entrypoint: container.Config.Entrypoint,
    env: [...container.Config.Env].sort(),
    labels,
    healthcheck: container.Config.Healthcheck ?? null,
    ports: container.HostConfig.PortBindings,
    tmpfs: container.HostConfig.Tmpfs,
    restart: container.HostConfig.RestartPolicy,
    mounts: container.Mounts.map((m) => ({ type: m.Type, name: m.Name ?? m.Source, destination: m.Destination, rw: m.RW })).sort((a, b) =>
      a.destination.localeCompare(b.destination),
    ),
  };
}

describeDocker('a Compose file applied as it is', () => {
  let hub: HubProcess;
  const dir = scratchDir('flotilla-e2e-compose-');
  const cli = (...args: string[]) => runCli(['--hub', hub.url, ...args], { env: { FLOTILLA_SOURCE: '', FLOTILLA_TOKEN: '' } });

  beforeAll(async () => {
    const images = await ensureTestImages();
    hub = await startHubProcess();
    startAgentProcess(hub, devices.compose, { bench: devices.compose }, { namePrefix: `${devices.compose}.` });
    startAgentProcess(hub, devices.spec, { bench: devices.spec }, { namePrefix: `${devices.spec}.` });
    await waitFor('both agents to register', async () => {
      const out = await cli('get', 'devices', '-o', 'json');
      const ids = (JSON.parse(out.stdout) as { items: { id: string }[] }).items.map((d) => d.id);
      return ids.includes(devices.compose) && ids.includes(devices.spec);
    });

    // As people write it: a list and a map for environment, short ports, a string command, depends_on long form.
    writeFileSync(
      join(dir, 'docker-compose.yml'),
      [
        'services:',
        '  migrate:',
        `    image: ${images.v1}`,
        '    command: ["/bin/sh", "-c", "echo migrated >> /data/init.log"]',
        '    volumes:',
        `      - ${volume}:/data`,
        '    restart: "no"',
        '    x-flotilla:',
        '      init: true',
        '  db:',
        `    image: ${images.v1}`,
        '    environment:',
        '      ROLE: db',
        '      REPLICAS: 1',
        '    volumes:',
        `      - ${volume}:/data`,
        '    healthcheck:',
        '      test: ["CMD-SHELL", "wget -q -O /dev/null http://localhost:80/ || exit 1"]',
        '      interval: 1s',
        '      retries: 30',
        '    restart: unless-stopped',
        '  web:',
        `    image: ${images.v1}`,
        '    command: /bin/sh -c "mkdir -p /www && echo compose > /www/index.html && exec httpd -f -p 80 -h /www"',
        '    environment:',
        '      - ROLE=web',
        '      - GREETING=hello world',
        '    ports:',
        '      - "80"',
        '      - target: 5353',
        '        protocol: udp',
        '    tmpfs:',
        '      - /tmp',
        '    labels:',
        '      com.example.tier: front',
        '    depends_on:',
        '      migrate:',
        '        condition: service_completed_successfully',
        '      db:',
        '        condition: service_healthy',
        '    restart: on-failure:3',
        'volumes:',
        `  ${volume}: {}`,
        '',
      ].join('\n'),
    );
    const spec: AppSpec = {
      name: fromSpec,
      scheduling: { selectors: { bench: devices.spec } },
      spec: {
        initContainers: [
          {
            name: 'migrate',
            image: images.v1,
            command: ['/bin/sh', '-c', 'echo migrated >> /data/init.log'],
            volumes: [`${volume}:/data`],
          },
        ],
        containers: [
          {
            name: 'db',
            image: images.v1,
            env: [
              { name: 'ROLE', value: 'db' },
              { name: 'REPLICAS', value: '1' },
            ],
            volumes: [`${volume}:/data`],
            healthcheck: { exec: ['/bin/sh', '-c', 'wget -q -O /dev/null http://localhost:80/ || exit 1'], interval: '1s', retries: 30 },
            restartPolicy: { name: 'unless-stopped' },
          },
          {
            name: 'web',
            image: images.v1,
            command: ['/bin/sh', '-c', 'mkdir -p /www && echo compose > /www/index.html && exec httpd -f -p 80 -h /www'],
            env: [
              { name: 'ROLE', value: 'web' },
              { name: 'GREETING', value: 'hello world' },
            ],
            ports: ['80', '5353/udp'],
            tmpfs: ['/tmp'],
            labels: { 'com.example.tier': 'front' },
            dependsOn: { db: 'healthy' },
            restartPolicy: { name: 'on-failure', maximumRetryCount: 3 },
          },
        ],
      },
    };
    writeFileSync(join(dir, 'spec.yaml'), stringify(spec));
  });

  afterAll(async () => {
    await stopAll();
    await removeContainersAndVolumes(`flotilla.app=${fromCompose}`);
    await removeContainersAndVolumes(`flotilla.app=${fromSpec}`, [volume]);
  });

  it('applies the Compose file in one command, and the spec beside it', async () => {
    const applied = await cli(
      'apply',
      '-f',
      join(dir, 'docker-compose.yml'),
      '--name',
      fromCompose,
      '--selector',
      `bench=${devices.compose}`,
    );
    // Compose's default network resolves service names; the device's default bridge does not, and the CLI says so.
    expect(applied.stderr).toContain('services db, web have no network');
    expect(applied).toMatchObject({ code: 0, stdout: `app/${fromCompose} created (revision 1)\n` });
    expect(await cli('apply', '-f', join(dir, 'spec.yaml'))).toMatchObject({ code: 0, stdout: `app/${fromSpec} created (revision 1)\n` });
  });

  it('gives the same containers on the device as the spec', async () => {
    const running = async () => {
      const [a, b] = await Promise.all([containersOf(fromCompose), containersOf(fromSpec)]);
      return Object.keys(a).length === 2 && Object.keys(b).length === 2 ? { compose: a, spec: b } : undefined;
    };
    await waitFor('both apps to run their two containers', async () => (await running()) !== undefined, { timeoutMs: 60_000 });
    const { compose, spec } = (await running())!;

    for (const name of ['db', 'web']) {
      expect(compose[name]!.Config.Labels['flotilla.device']).toBe(devices.compose);
      expect(spec[name]!.Config.Labels['flotilla.device']).toBe(devices.spec);
      expect(comparable(compose[name]!)).toEqual(comparable(spec[name]!));
    }
    // The comparison is of real settings, not of two empty records.
    expect(comparable(compose.web!)).toMatchObject({
      env: expect.arrayContaining(['GREETING=hello world', 'ROLE=web']),
      ports: { '80/tcp': [{ HostIp: '', HostPort: '' }], '5353/udp': [{ HostIp: '', HostPort: '' }] },
      labels: { 'com.example.tier': 'front' },
      restart: { Name: 'on-failure', MaximumRetryCount: 3 },
    });
    expect(comparable(compose.db!)).toMatchObject({ mounts: [{ type: 'volume', name: volume, destination: '/data', rw: true }] });
    expect(compose.web!.Config.Labels['flotilla.spec-hash']).toBe(spec.web!.Config.Labels['flotilla.spec-hash']);

    // The service marked x-flotilla.init ran once per app, to completion, before the others; it is no running container.
    expect(await docker('exec', compose.db!.Name.slice(1), 'cat', '/data/init.log')).toBe('migrated\nmigrated');
  });
});

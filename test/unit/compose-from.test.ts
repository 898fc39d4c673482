/**
 * The Compose mapping (cli/compose/), from Compose files written as people
 * write them, short and long syntax: each field lands on the spec field the
 * agent reads, the converted spec passes validateAppSpec, and every field
 * that cannot be mapped is named, with its path, in the one list of problems.
 * Files are real (a scratch folder), so env_file and .env are read as the CLI reads them.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ComposeOptions } from '../../cli/compose/from-compose.js';
import { convertCompose } from '../../cli/compose/load-compose.js';
import { shellWords } from '../../cli/compose/shell-words.js';
import { processIO } from '../../cli/io.js';
import { parseDocuments } from '../../cli/spec-documents.js';
import { InvalidSpecsError, loadSpecSet } from '../../cli/spec-files.js';
import { loadYaml } from '../../cli/yaml.js';
import { validateAppSpec } from '../../shared/app-spec.js';
import type { AppSpec, ContainerSpec } from '../../shared/schemas/spec.js';
import { scratchDir } from '../support/scratch.js';

const SCHEDULING: ComposeOptions = { scheduling: { selectors: { site: 'lab' } } };

async function convert(text: string, files: Record<string, string> = {}, env: Record<string, string> = {}, options = SCHEDULING) {
  const dir = scratchDir('compose-from-');
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  const file = join(dir, 'docker-compose.yml');
  writeFileSync(file, text);
  await loadYaml();
  // Parsed as the CLI parses a file (merge keys and all), then converted.
  const [document] = parseDocuments(file, text);
  if (document?.error) throw document.error;
  return convertCompose(processIO(), file, document!.value as Record<string, unknown>, { name: 'shop', ...options }, env);
}

async function spec(text: string, files: Record<string, string> = {}, env: Record<string, string> = {}): Promise<AppSpec> {
  const result = await convert(text, files, env);
  if (!result.ok) throw new Error(result.problems.join('\n'));
  expect(validateAppSpec(result.spec).ok).toBe(true);
  return result.spec;
}

async function service(text: string, files: Record<string, string> = {}, env: Record<string, string> = {}): Promise<ContainerSpec> {
  return (await spec(text, files, env)).spec.containers[0]!;
}

async function problems(text: string, env: Record<string, string> = {}, options = SCHEDULING): Promise<string[]> {
  const result = await convert(text, {}, env, options);
  if (result.ok) throw new Error('expected the conversion to be refused');
  return result.problems;
}

describe('compose → spec: service fields', () => {
  it('image, command and entrypoint as strings split into shell words, and as lists', async () => {
    const web = await service(`
services:
  web:
    image: nginx:1.25
    entrypoint: /docker-entrypoint.sh
    command: nginx -g 'daemon off;' --label "a b" c\\ d
`);
    expect(web.image).toBe('nginx:1.25');
    expect(web.entrypoint).toEqual(['/docker-entrypoint.sh']);
    expect(web.command).toEqual(['nginx', '-g', 'daemon off;', '--label', 'a b', 'c d']);
    const listed = await service('services:\n  web:\n    image: busybox\n    command: ["sh", "-c", "echo $$HOME"]\n');
    expect(listed.command).toEqual(['sh', '-c', 'echo $HOME']);
  });

  it('environment as a list and a map, any scalar as a string, a bare name from the environment, env_file read beside the file', async () => {
    const listed = await service(
      `
services:
  web:
    image: busybox
    env_file: [common.env, web.env]
    environment:
      - MODE=prod
      - EMPTY=
      - FROM_SHELL
`,
      { 'common.env': '# shared\nLEVEL=debug\nexport REGION=eu\nMODE=dev\n', 'web.env': 'QUOTED="two words"\n' },
      { FROM_SHELL: 'shell-value' },
    );
    expect(listed.env).toEqual([
      { name: 'LEVEL', value: 'debug' },
      { name: 'REGION', value: 'eu' },
      { name: 'MODE', value: 'prod' },
      { name: 'QUOTED', value: 'two words' },
      { name: 'EMPTY', value: '' },
      { name: 'FROM_SHELL', value: 'shell-value' },
    ]);
    const mapped = await service(
      'services:\n  web:\n    image: busybox\n    environment:\n      PORT: 8080\n      DEBUG: true\n      RATIO: 1.5\n      TOKEN:\n',
      {},
      { TOKEN: 't' },
    );
    expect(mapped.env).toEqual([
      { name: 'PORT', value: '8080' },
      { name: 'DEBUG', value: 'true' },
      { name: 'RATIO', value: '1.5' },
      { name: 'TOKEN', value: 't' },
    ]);
  });

  it('a bare environment name that is not set is refused, naming it', async () => {
    expect(await problems('services:\n  web:\n    image: busybox\n    environment: [API_KEY]\n')).toEqual([
      'services.web.environment.API_KEY: has no value and API_KEY is not set in the environment of flotilla: set it, or write API_KEY=VALUE',
    ]);
  });

  it('ports short and long', async () => {
    const web = await service(`
services:
  web:
    image: nginx
    ports:
      - "8080:80"
      - "127.0.0.1:53:53/udp"
      - 9000
      - target: 443
        published: 8443
        host_ip: 127.0.0.1
        protocol: tcp
      - { target: 5000, published: 5001 }
`);
    expect(web.ports).toEqual(['8080:80', '127.0.0.1:53:53/udp', '9000', '127.0.0.1:8443:443/tcp', '5001:5000']);
  });

  it('volumes: named (declared at the top), absolute binds, read-only, long syntax, tmpfs', async () => {
    const db = await service(`
services:
  db:
    image: postgres
    volumes:
      - db-data:/var/lib/postgresql/data
      - /etc/db/conf.d:/etc/db/conf.d:ro
      - type: volume
        source: backups
        target: /backups
      - type: bind
        source: /srv/certs
        target: /certs
        read_only: true
      - type: tmpfs
        target: /scratch
        tmpfs: { size: 64m }
    tmpfs: /run
volumes:
  db-data:
  backups: { external: true }
`);
    expect(db.volumes).toEqual([
      'db-data:/var/lib/postgresql/data',
      '/etc/db/conf.d:/etc/db/conf.d:ro',
      'backups:/backups',
      '/srv/certs:/certs:ro',
    ]);
    expect(db.tmpfs).toEqual(['/run', '/scratch:size=64m']);
  });

  it('devices, shm_size, privileged, capabilities, user, working_dir, labels (list and map)', async () => {
    const gw = await service(`
services:
  gw:
    image: gw
    devices: ["/dev/ttyUSB0", "/dev/ttyACM0:/dev/serial:rw"]
    shm_size: 64m
    privileged: true
    cap_add: [NET_ADMIN]
    cap_drop: [MKNOD]
    user: "1000:1000"
    working_dir: /app
    labels: [com.example.team=iot, com.example.empty]
`);
    expect(gw.devices).toEqual([
      { hostPath: '/dev/ttyUSB0' },
      { hostPath: '/dev/ttyACM0', containerPath: '/dev/serial', permissions: 'rw' },
    ]);
    expect(gw).toMatchObject({
      shmSize: '64m',
      privileged: true,
      capAdd: ['NET_ADMIN'],
      capDrop: ['MKNOD'],
      user: '1000:1000',
      workDir: '/app',
    });
    expect(gw.labels).toEqual({ 'com.example.team': 'iot', 'com.example.empty': '' });
    const mapped = await service('services:\n  gw:\n    image: gw\n    labels:\n      com.example.rev: 3\n');
    expect(mapped.labels).toEqual({ 'com.example.rev': '3' });
  });

  it('restart: no, always, unless-stopped, on-failure[:N]; absent is Compose\'s "no"', async () => {
    const app = await spec(`
services:
  a: { image: x, restart: always }
  b: { image: x, restart: unless-stopped }
  c: { image: x, restart: "on-failure:5" }
  d: { image: x, restart: on-failure }
  e: { image: x, restart: "no" }
  f: { image: x }
`);
    expect(app.spec.containers.map((c) => c.restartPolicy)).toEqual([
      { name: 'always' },
      { name: 'unless-stopped' },
      { name: 'on-failure', maximumRetryCount: 5 },
      { name: 'on-failure' },
      { name: 'no' },
      { name: 'no' },
    ]);
  });

  it("healthcheck: CMD, CMD-SHELL, a string and NONE; Compose durations become the spec's", async () => {
    const app = await spec(`
services:
  a:
    image: x
    healthcheck: { test: ["CMD", "curl", "-f", "http://localhost"], interval: 1m30s, timeout: 500ms, retries: 3, start_period: 40s }
  b:
    image: x
    healthcheck: { test: ["CMD-SHELL", "pg_isready -U app"] }
  c:
    image: x
    healthcheck: { test: wget -q -O- localhost:80 }
  d:
    image: x
    healthcheck: { test: ["NONE"] }
`);
    const [a, b, c, d] = app.spec.containers;
    expect(a!.healthcheck).toEqual({
      exec: ['curl', '-f', 'http://localhost'],
      interval: '90s',
      timeout: '500ms',
      retries: 3,
      startPeriod: '40s',
    });
    expect(b!.healthcheck).toEqual({ exec: ['/bin/sh', '-c', 'pg_isready -U app'] });
    expect(c!.healthcheck).toEqual({ exec: ['/bin/sh', '-c', 'wget -q -O- localhost:80'] });
    expect(d!.healthcheck).toBeUndefined();
  });

  it('mem_limit and cpus, or deploy.resources.limits', async () => {
    const app = await spec(`
services:
  a: { image: x, mem_limit: 256m, cpus: 0.5 }
  b:
    image: x
    deploy:
      resources:
        limits: { memory: 1g, cpus: "1.5" }
`);
    expect(app.spec.containers.map((c) => c.resources)).toEqual([
      { memory: '256m', cpus: 0.5 },
      { memory: '1g', cpus: 1.5 },
    ]);
  });

  it('mem_limit and cpus given twice (also under deploy.resources.limits): one value in two spellings is taken, two values refused', async () => {
    const app = await spec(`
services:
  a:
    image: x
    mem_limit: 64m
    cpus: "0.50"
    deploy: { resources: { limits: { memory: 64M, cpus: 0.5 } } }
  b:
    image: x
    mem_limit: 1g
    deploy: { resources: { limits: { memory: 1024Mi } } }
`);
    expect(app.spec.containers.map((c) => c.resources)).toEqual([{ memory: '64m', cpus: 0.5 }, { memory: '1g' }]);
    expect(
      await problems(
        'services:\n  a:\n    image: x\n    mem_limit: 64m\n    cpus: 1\n    deploy: { resources: { limits: { memory: 128m, cpus: 2 } } }\n',
      ),
    ).toEqual([
      'services.a.mem_limit: 64m differs from deploy.resources.limits.memory (128m): give one',
      'services.a.cpus: 1 differs from deploy.resources.limits.cpus (2): give one',
    ]);
  });

  it('depends_on: the short list means started, the long form maps each condition', async () => {
    const app = await spec(`
services:
  db:
    image: postgres
    healthcheck: { test: ["CMD", "pg_isready"] }
  migrate:
    image: migrate
    restart: "no"
  cache: { image: redis }
  web:
    image: web
    depends_on:
      db: { condition: service_healthy }
      migrate: { condition: service_completed_successfully }
      cache: { condition: service_started }
  worker:
    image: worker
    depends_on: [db, cache]
`);
    const byName = Object.fromEntries(app.spec.containers.map((c) => [c.name, c.dependsOn]));
    expect(byName.web).toEqual({ db: 'healthy', migrate: 'completed', cache: 'started' });
    expect(byName.worker).toEqual({ db: 'started', cache: 'started' });
  });

  it('networks: one network with aliases (the service name first), network_mode, and several networks refused', async () => {
    const app = await spec(`
services:
  web:
    image: web
    networks:
      backend:
        aliases: [shop, www]
  db:
    image: db
    networks: [backend]
  probe:
    image: probe
    network_mode: host
networks:
  backend: { external: true }
`);
    const [web, db, probe] = app.spec.containers;
    expect(web).toMatchObject({ networkMode: 'backend', networkAliases: ['web', 'shop', 'www'] });
    expect(db).toMatchObject({ networkMode: 'backend', networkAliases: ['db'] });
    expect(probe!.networkMode).toBe('host');
    expect(await problems('services:\n  web:\n    image: web\n    networks: [front, back]\nnetworks:\n  front: {}\n  back: {}\n')).toEqual([
      'services.web.networks: a Flotilla container joins one network, this service names 2 (front, back): keep one',
    ]);
  });

  it('secrets short and long: spec secrets by name at the path Compose gives them; the file is named in a note, never read', async () => {
    const result = await convert(`
services:
  db:
    image: postgres
    secrets:
      - db_password
      - source: api-key
        target: /etc/app/key
      - source: tls
        target: tls.pem
secrets:
  db_password: { file: ./secrets/db_password.txt }
  api-key: { external: true }
  tls: { file: /nowhere/tls.pem }
`);
    if (!result.ok) throw new Error(result.problems.join('\n'));
    expect(result.spec.spec.containers[0]!.secrets).toEqual([
      { name: 'db-password', path: '/run/secrets/db_password' },
      { name: 'api-key', path: '/etc/app/key' },
      { name: 'tls', path: '/run/secrets/tls.pem' },
    ]);
    expect(result.notes).toContain(
      'secret db_password: its value is not uploaded from ./secrets/db_password.txt: set it before applying with flotilla secret set db-password --from-file ./secrets/db_password.txt',
    );
  });

  it('a secret mode: 0400 in any spelling is what the agent writes, taken without a word; another mode is refused', async () => {
    const result = await convert(`
services:
  web:
    image: web
    restart: always
    secrets:
      - { source: token, target: /etc/a, mode: 0400 }
      - { source: token, target: /etc/b, mode: "0400" }
      - { source: token, target: /etc/c, mode: 256 }
      - { source: token, target: /etc/d, mode: 0o400 }
secrets:
  token: { external: true }
`);
    if (!result.ok) throw new Error(result.problems.join('\n'));
    expect(result.spec.spec.containers[0]!.secrets).toEqual(['a', 'b', 'c', 'd'].map((f) => ({ name: 'token', path: `/etc/${f}` })));
    expect(result.notes.filter((note) => note.includes('mode'))).toEqual([]);
    expect(
      await problems(
        'services:\n  web:\n    image: web\n    secrets: [{ source: token, mode: 0444 }]\nsecrets:\n  token: { external: true }\n',
      ),
    ).toEqual(['services.web.secrets[0].mode: not supported: secret files are written with mode 0400, owned by root']);
  });

  it('x-flotilla: scheduling, update and rollout at the top; an init service becomes an init container', async () => {
    const result = await convert(
      `
name: shop
x-flotilla:
  scheduling: { devices: [gw-1] }
  update: { strategy: kill-then-download }
  rollout: { canary: 1 }
  initPolicy: start
services:
  migrate:
    image: migrate
    x-flotilla: { init: true }
  web:
    image: web
    depends_on:
      migrate: { condition: service_completed_successfully }
    x-flotilla:
      healthcheck: { http: "http://127.0.0.1:8080/health" }
`,
      {},
      {},
      {},
    );
    if (!result.ok) throw new Error(result.problems.join('\n'));
    expect(result.spec.scheduling).toEqual({ devices: ['gw-1'] });
    expect(result.spec.spec).toMatchObject({
      initContainers: [{ name: 'migrate', image: 'migrate' }],
      initPolicy: 'start',
      update: { strategy: 'kill-then-download' },
      rollout: { canary: 1 },
    });
    expect(result.spec.spec.containers).toEqual([
      { name: 'web', image: 'web', restartPolicy: { name: 'no' }, healthcheck: { http: 'http://127.0.0.1:8080/health' } },
    ]);
  });

  it('interpolation from the environment over .env, with defaults; an unset variable without one is refused', async () => {
    const web = await service(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Compose's own ${VAR} syntax, not a template
      'services:\n  web:\n    image: "registry.local/web:${TAG:-latest}"\n    environment:\n      - HUB=${HUB}\n      - SITE=${SITE}\n',
      { '.env': 'HUB=from-dotenv\nSITE=dotenv-site\n' },
      { SITE: 'shell-site' },
    );
    expect(web.image).toBe('registry.local/web:latest');
    expect(web.env).toEqual([
      { name: 'HUB', value: 'from-dotenv' },
      { name: 'SITE', value: 'shell-site' },
    ]);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Compose's own ${VAR} syntax, not a template
    expect(await problems('services:\n  web:\n    image: "web:${TAG}"\n')).toEqual([
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Compose's own ${VAR} syntax, not a template
      'services.web.image: ${TAG} is not set: set it in the environment (or in .env beside the Compose file), or give a default: ${TAG:-value}',
    ]);
    // With the variable set to something no engine takes, the image itself is named.
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Compose's own ${VAR} syntax, not a template
    expect(await problems('services:\n  web:\n    image: "web:${TAG}"\n', { TAG: '.hidden' })).toEqual([
      'services.web (as spec.containers[0].image): is not an image reference Docker accepts: the tag ".hidden" may hold only letters, digits, "_", "." and "-", at most 128, and not start with "." or "-"',
    ]);
  });
});

describe('compose → spec: YAML anchors and merge keys', () => {
  it('a service built from <<: *common (an x- key used only as the anchor) plus its own fields, and << inside environment', async () => {
    const app = await spec(`
x-common: &common
  image: registry.local/shop:1
  restart: unless-stopped
  environment: &env
    LEVEL: info
    REGION: eu
services:
  web:
    <<: *common
    command: serve
    environment:
      <<: *env
      LEVEL: debug
  worker:
    <<: *common
`);
    expect(app.spec.containers).toEqual([
      {
        name: 'web',
        image: 'registry.local/shop:1',
        command: ['serve'],
        env: [
          { name: 'LEVEL', value: 'debug' },
          { name: 'REGION', value: 'eu' },
        ],
        restartPolicy: { name: 'unless-stopped' },
      },
      {
        name: 'worker',
        image: 'registry.local/shop:1',
        env: [
          { name: 'LEVEL', value: 'info' },
          { name: 'REGION', value: 'eu' },
        ],
        restartPolicy: { name: 'unless-stopped' },
      },
    ]);
  });
});

describe('compose → spec: refusals', () => {
  it('names every field it cannot map, with its path, in one list', async () => {
    const found = await problems(`
services:
  web:
    build: .
    image: web
    extends: { service: base }
    profiles: [debug]
    configs: [nginx]
    scale: 2
    links: [db]
    external_links: [other]
    pid: host
    ipc: host
    frobnicate: 1
    deploy: { replicas: 3 }
    volumes: ["./src:/app"]
  db:
    image: postgres
configs:
  nginx: { file: ./nginx.conf }
`);
    const paths = found.map((line) => line.split(':')[0]);
    expect(paths).toEqual(
      expect.arrayContaining([
        'configs',
        'services.web.build',
        'services.web.extends',
        'services.web.profiles',
        'services.web.configs',
        'services.web.scale',
        'services.web.links',
        'services.web.external_links',
        'services.web.pid',
        'services.web.ipc',
        'services.web.frobnicate',
        'services.web.deploy.replicas',
        'services.web.volumes[0]',
      ]),
    );
    expect(found.find((line) => line.startsWith('services.web.volumes[0]'))).toMatch(/relative path: a device has no project folder/);
    expect(found.find((line) => line.startsWith('services.web.build'))).toMatch(/does not build images/);
  });

  it('a named volume not declared at the top level, a wrong shape, and no name or scheduling are named too', async () => {
    const found = await problems('services:\n  web:\n    image: web\n    volumes: ["data:/data"]\n    ports: [{ target: http }]\n', {}, {});
    expect(found).toEqual(
      expect.arrayContaining([
        'services.web.volumes[0]: volume "data" is not declared under the top-level volumes: (add "volumes: {data: {}}")',
        'services.web.ports[0].target: must be integer',
        'no scheduling: give --selector key=value or --device ID (or x-flotilla.scheduling in the file) to say which devices run it',
      ]),
    );
  });

  it("the spec's checks of start order say the fix in Compose's words (restart:, depends_on)", async () => {
    const completed = await problems(`
services:
  seed: { image: seed, restart: always }
  web:
    image: web
    restart: always
    depends_on: { seed: { condition: service_completed_successfully } }
`);
    expect(completed).toEqual([
      'services.web (as spec.containers[1].dependsOn.seed): "seed" is restarted when it exits, so it never stays completed: give it restart: "no" or "on-failure"',
    ]);
    const cycle = await problems(
      'services:\n  a: { image: a, restart: always, depends_on: [b] }\n  b: { image: b, restart: always, depends_on: [a] }\n',
    );
    expect(cycle).toEqual([expect.stringMatching(/^services\.a \(as spec\.containers\[0\]\.dependsOn\): depends_on cycle: a → b → a$/)]);
  });

  it('a condition the spec refuses is named by its service (healthy without a healthcheck)', async () => {
    expect(
      await problems('services:\n  db: { image: db }\n  web:\n    image: web\n    depends_on: { db: { condition: service_healthy } }\n'),
    ).toEqual([expect.stringMatching(/^services\.web \(as spec\.containers\[1\]\.dependsOn\.db\): .*healthcheck/)]);
  });
});

describe('compose → spec: what a first Compose file trips on', () => {
  it('network_mode service:NAME is refused with the Docker name the agent gives that container (APP_SERVICE)', async () => {
    const text = 'services:\n  a: { image: a, restart: always }\n  b: { image: b, restart: always, network_mode: "service:a" }\n';
    expect(await problems(text)).toEqual([
      'services.b.network_mode: "service:a": has no spec form: write container:shop_a (the agent names a service\'s container APP_SERVICE)',
    ]);
  });

  it('no app name: the error names x-flotilla.name, which docker-compose 1.29 accepts', async () => {
    const result = await convertCompose(
      processIO(),
      join(scratchDir('compose-from-'), 'docker-compose.yml'),
      { services: { web: { image: 'web' } } },
      SCHEDULING,
      {},
    );
    expect(result.ok ? [] : result.problems).toContain(
      'name: no app name: give --name APP, or x-flotilla: {name: APP} in the file (or name: at the top, which docker-compose 1.29 refuses)',
    );
  });

  it('a note names the services without restart: (they stay down after a reboot), but not one others wait to complete', async () => {
    const result = await convert(`
services:
  db: { image: db, restart: unless-stopped }
  seed: { image: seed }
  web:
    image: web
    depends_on: { seed: { condition: service_completed_successfully } }
  worker: { image: worker }
`);
    if (!result.ok) throw new Error(result.problems.join('\n'));
    expect(result.spec.spec.containers.find((c) => c.name === 'web')!.restartPolicy).toEqual({ name: 'no' });
    expect(result.notes).toContain(
      "services without restart: web, worker: Compose's default is no, so they stay down after the device reboots or their process exits; give them restart: unless-stopped to keep them running",
    );
    const written = await convert('services:\n  web: { image: web, restart: "no" }\n');
    expect(written.ok && written.notes.some((note) => note.includes('without restart'))).toBe(false);
  });

  it('depends_on with restart: true is taken, with a note; required: true is taken; required: false is refused, saying what to do', async () => {
    const result = await convert(`
services:
  db: { image: db, restart: always, healthcheck: { test: [CMD, ready] } }
  web:
    image: web
    restart: always
    depends_on:
      db: { condition: service_healthy, restart: true, required: true }
`);
    if (!result.ok) throw new Error(result.problems.join('\n'));
    expect(result.spec.spec.containers[1]!.dependsOn).toEqual({ db: 'healthy' });
    expect(result.notes).toContain(
      'services.web.depends_on.db.restart: ignored: an update swaps db before the services that depend on it, but does not restart one whose own spec is unchanged',
    );
    expect(
      await problems(
        'services:\n  db: { image: db }\n  web:\n    image: web\n    depends_on: { db: { condition: service_started, required: false } }\n',
      ),
    ).toEqual([
      'services.web.depends_on.db.required: false has no spec form: Flotilla waits for every dependency: delete the entry if the service starts without db, else delete required: false',
    ]);
  });

  it('a service name Compose allows but a container name does not is refused with the name to use instead', async () => {
    const found = await problems(`
services:
  redis_cache: { image: redis, restart: always }
  Web: { image: web, restart: always, depends_on: [redis_cache] }
  a_b: { image: x, restart: always }
  a-b: { image: x, restart: always }
`);
    const rule = 'the service name must be a DNS label (a-z, 0-9, "-", at most 63) to name a container';
    expect(found).toEqual([
      `services.redis_cache: ${rule}: rename it "redis-cache" (and the depends_on entries that name it)`,
      `services.Web: ${rule}: rename it "web" (and the depends_on entries that name it)`,
      `services.a_b: ${rule}: rename it (and the depends_on entries that name it)`,
    ]);
  });

  it('a key that is not a Compose field is called one, with the nearest field; a Compose field without a spec form says what to do', async () => {
    const found = await problems(`
services:
  web:
    image: web
    restart: always
    enviroment: { A: "1" }
    colour: blue
    logging: { driver: json-file }
    hostname: web
    extra_hosts: ["db:10.0.0.2"]
    init: true
    stop_grace_period: 30s
    pid: host
servces: {}
`);
    expect(found).toEqual(
      expect.arrayContaining([
        'servces: not a Compose field (did you mean services?)',
        'services.web.enviroment: not a Compose field (did you mean environment?)',
        'services.web.colour: not a Compose field',
        'services.web.pid: cannot be mapped: a Compose field the app spec has no form for: delete it',
      ]),
    );
    for (const key of ['logging', 'hostname', 'extra_hosts', 'init', 'stop_grace_period']) {
      expect(found.find((line) => line.startsWith(`services.web.${key}:`))).toMatch(/^[^:]+: cannot be mapped: .+/);
    }
    expect(found.find((line) => line.startsWith('services.web.init:'))).toContain('x-flotilla: {init: true}');
    expect(found).toHaveLength(9);
  });

  it('expose and container_name are dropped with a note, the container named as the agent names it', async () => {
    const result = await convert(
      'services:\n  web:\n    image: web\n    restart: always\n    expose: ["8080"]\n    container_name: my-web\n',
    );
    if (!result.ok) throw new Error(result.problems.join('\n'));
    expect(result.spec.spec.containers[0]).toEqual({ name: 'web', image: 'web', restartPolicy: { name: 'always' } });
    expect(result.notes).toEqual([
      "services.web.expose: ignored: services on one network reach all of each other's ports; publish one on the device with ports:",
      'services.web.container_name: ignored: the agent names the container shop_web',
    ]);
  });
});

describe('compose → spec: override files', () => {
  it('a folder with docker-compose.yml and docker-compose.override.yml: one problem naming the override and what to do', async () => {
    const dir = scratchDir('compose-override-');
    writeFileSync(
      join(dir, 'docker-compose.yaml'),
      'x-flotilla: { name: shop, scheduling: { selectors: { site: lab } } }\nservices:\n  web: { image: web, restart: always }\n',
    );
    writeFileSync(join(dir, 'docker-compose.override.yml'), 'services:\n  web: { ports: ["8080:80"] }\n');
    const refused = await loadSpecSet(processIO(), [dir]).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(InvalidSpecsError);
    expect((refused as InvalidSpecsError).problems).toEqual([
      `${join(dir, 'docker-compose.override.yml')}: a Compose override file, which Flotilla does not merge: merge what the fleet needs of it into docker-compose.yaml (docker-compose -f docker-compose.yaml -f docker-compose.override.yml config prints the two merged), then leave it out of what flotilla reads (out of the folder, or off the command line)`,
    ]);
  });

  it('compose.override.yaml too, named on its own; a file merely containing "override" is read as any Compose file', async () => {
    const dir = scratchDir('compose-override-');
    const override = join(dir, 'compose.override.yaml');
    writeFileSync(override, 'services:\n  web: { image: web }\n');
    const result = await convertCompose(
      processIO(),
      override,
      { services: { web: { image: 'web' } } },
      { name: 'shop', ...SCHEDULING },
      {},
    );
    expect(result.ok ? [] : result.problems).toEqual([
      expect.stringMatching(
        /^a Compose override file, .* into compose\.yaml \(docker-compose -f compose\.yaml -f compose\.override\.yaml config/,
      ),
    ]);
    const plain = join(dir, 'override-web.yml');
    expect(
      (
        await convertCompose(
          processIO(),
          plain,
          { services: { web: { image: 'web', restart: 'always' } } },
          { name: 'shop', ...SCHEDULING },
          {},
        )
      ).ok,
    ).toBe(true);
  });
});

describe('shellWords', () => {
  it('splits as a POSIX shell does, without expanding anything', () => {
    expect(shellWords(`a "b c" 'd $e' f\\ g "h\\"i"`)).toEqual(['a', 'b c', 'd $e', 'f g', 'h"i']);
    expect(shellWords('  ')).toEqual([]);
    expect(() => shellWords('echo "oops')).toThrow('the double quote is never closed');
  });
});

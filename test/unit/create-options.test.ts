import { describe, expect, it } from 'vitest';
import { DEFAULT_RESTART_POLICY, toCreateOptions } from '../../agent/runtime/create-options.js';
import type { CreateRequest } from '../../agent/runtime/runtime.js';
import type { ContainerSpec } from '../../shared/index.js';

function request(spec: Partial<ContainerSpec> = {}): CreateRequest {
  return {
    deviceId: 'dev-1',
    app: 'sensor-gateway',
    appRevision: 7,
    specHash: '0123456789abcdef',
    spec: { name: 'gateway', image: 'registry.local/sensor-gateway:1.4.2', ...spec },
  };
}

describe('toCreateOptions', () => {
  it('maps a minimal spec to name, image, Flotilla labels and the default restart policy, and nothing else', () => {
    expect(toCreateOptions(request())).toStrictEqual({
      name: 'sensor-gateway_gateway',
      Image: 'registry.local/sensor-gateway:1.4.2',
      Labels: {
        'flotilla.managed': 'true',
        'flotilla.app': 'sensor-gateway',
        'flotilla.container': 'gateway',
        'flotilla.app-revision': '7',
        'flotilla.spec-hash': '0123456789abcdef',
        'flotilla.device': 'dev-1',
      },
      HostConfig: { RestartPolicy: { Name: 'unless-stopped', MaximumRetryCount: 0 } },
    });
    expect(DEFAULT_RESTART_POLICY).toBe('unless-stopped');
  });

  describe('entrypoint, command and args', () => {
    it('maps entrypoint to Entrypoint and command to Cmd', () => {
      const options = toCreateOptions(request({ entrypoint: ['/bin/sh', '-c'], command: ['echo hi'] }));
      expect(options.Entrypoint).toEqual(['/bin/sh', '-c']);
      expect(options.Cmd).toEqual(['echo hi']);
    });

    it('appends args to command', () => {
      const options = toCreateOptions(request({ command: ['/app/gateway'], args: ['--port', '80'] }));
      expect(options.Cmd).toEqual(['/app/gateway', '--port', '80']);
      expect(options).not.toHaveProperty('Entrypoint');
    });

    it('uses args alone as Cmd, keeping the image ENTRYPOINT (as Kubernetes args)', () => {
      const options = toCreateOptions(request({ args: ['--verbose'] }));
      expect(options.Cmd).toEqual(['--verbose']);
      expect(options).not.toHaveProperty('Entrypoint');
    });

    it('leaves Cmd unset when neither command nor args is given, so the image CMD applies', () => {
      const options = toCreateOptions(request({ entrypoint: ['/init'] }));
      expect(options.Entrypoint).toEqual(['/init']);
      expect(options).not.toHaveProperty('Cmd');
    });

    it('does not alias the spec arrays', () => {
      const spec = { entrypoint: ['/init'], command: ['run'] };
      const options = toCreateOptions(request(spec));
      (options.Cmd as string[]).push('mutated');
      (options.Entrypoint as string[]).push('mutated');
      expect(spec).toEqual({ entrypoint: ['/init'], command: ['run'] });
    });
  });

  it('maps workDir and user', () => {
    const options = toCreateOptions(request({ workDir: '/srv/app', user: '1000:1000' }));
    expect(options.WorkingDir).toBe('/srv/app');
    expect(options.User).toBe('1000:1000');
  });

  it('maps env entries with a value to K=V, keeps empty values and skips unresolved secrets', () => {
    const options = toCreateOptions(
      request({
        env: [
          { name: 'LOG_LEVEL', value: 'info' },
          { name: 'TOKEN', fromSecret: 'gw-token' },
          { name: 'EMPTY', value: '' },
          { name: 'URL', value: 'http://x/?a=b=c' },
        ],
      }),
    );
    expect(options.Env).toEqual(['LOG_LEVEL=info', 'EMPTY=', 'URL=http://x/?a=b=c']);
  });

  describe('ports', () => {
    it('maps host:container to ExposedPorts and PortBindings', () => {
      const options = toCreateOptions(request({ ports: ['8080:80'] }));
      expect(options.ExposedPorts).toEqual({ '80/tcp': {} });
      expect(options.HostConfig?.PortBindings).toEqual({ '80/tcp': [{ HostPort: '8080' }] });
    });

    it('keeps the host IP and the protocol', () => {
      const options = toCreateOptions(request({ ports: ['127.0.0.1:5353:53/udp'] }));
      expect(options.ExposedPorts).toEqual({ '53/udp': {} });
      expect(options.HostConfig?.PortBindings).toEqual({ '53/udp': [{ HostIp: '127.0.0.1', HostPort: '5353' }] });
    });

    it('publishes a container-only port on a random host port (HostPort "")', () => {
      const options = toCreateOptions(request({ ports: ['9000'] }));
      expect(options.ExposedPorts).toEqual({ '9000/tcp': {} });
      expect(options.HostConfig?.PortBindings).toEqual({ '9000/tcp': [{ HostPort: '' }] });
    });

    it('collects several host ports for one container port and separates tcp from udp', () => {
      const options = toCreateOptions(request({ ports: ['8080:80', '127.0.0.1:8081:80', '53:53/udp', '53:53'] }));
      expect(options.ExposedPorts).toEqual({ '80/tcp': {}, '53/udp': {}, '53/tcp': {} });
      expect(options.HostConfig?.PortBindings).toEqual({
        '80/tcp': [{ HostPort: '8080' }, { HostIp: '127.0.0.1', HostPort: '8081' }],
        '53/udp': [{ HostPort: '53' }],
        '53/tcp': [{ HostPort: '53' }],
      });
    });
  });

  it('maps named volumes and bind mounts to Mounts, honouring :ro and :rw', () => {
    const options = toCreateOptions(
      request({ volumes: ['gateway-data:/data', '/etc/gateway:/etc/gateway:ro', 'cache.v2:/cache:rw', '/var/log:/host-log:ro'] }),
    );
    expect(options.HostConfig?.Mounts).toEqual([
      { Type: 'volume', Source: 'gateway-data', Target: '/data', ReadOnly: false },
      { Type: 'bind', Source: '/etc/gateway', Target: '/etc/gateway', ReadOnly: true },
      { Type: 'volume', Source: 'cache.v2', Target: '/cache', ReadOnly: false },
      { Type: 'bind', Source: '/var/log', Target: '/host-log', ReadOnly: true },
    ]);
    expect(options.HostConfig).not.toHaveProperty('Binds');
  });

  it('maps devices with the container path defaulting to the host path and permissions to rwm', () => {
    const options = toCreateOptions(
      request({
        devices: [{ hostPath: '/dev/ttyACM0' }, { hostPath: '/dev/i2c-1', containerPath: '/dev/i2c', permissions: 'rw' }],
      }),
    );
    expect(options.HostConfig?.Devices).toEqual([
      { PathOnHost: '/dev/ttyACM0', PathInContainer: '/dev/ttyACM0', CgroupPermissions: 'rwm' },
      { PathOnHost: '/dev/i2c-1', PathInContainer: '/dev/i2c', CgroupPermissions: 'rw' },
    ]);
  });

  it('maps tmpfs entries to a path → options record', () => {
    const options = toCreateOptions(request({ tmpfs: ['/dev/shm:size=64m', '/run', '/tmp:size=1m,mode=1777'] }));
    expect(options.HostConfig?.Tmpfs).toEqual({ '/dev/shm': 'size=64m', '/run': '', '/tmp': 'size=1m,mode=1777' });
  });

  it('maps shmSize to bytes', () => {
    expect(toCreateOptions(request({ shmSize: '64m' })).HostConfig?.ShmSize).toBe(67_108_864);
    expect(toCreateOptions(request({ shmSize: '1g' })).HostConfig?.ShmSize).toBe(1_073_741_824);
  });

  it('maps gpus "all" to Count -1 and a number to that count', () => {
    expect(toCreateOptions(request({ gpus: 'all' })).HostConfig?.DeviceRequests).toEqual([
      { Driver: '', Count: -1, Capabilities: [['gpu']] },
    ]);
    expect(toCreateOptions(request({ gpus: 2 })).HostConfig?.DeviceRequests).toEqual([{ Driver: '', Count: 2, Capabilities: [['gpu']] }]);
  });

  describe('restartPolicy', () => {
    it('maps name and retry count for on-failure', () => {
      const options = toCreateOptions(request({ restartPolicy: { name: 'on-failure', maximumRetryCount: 5 } }));
      expect(options.HostConfig?.RestartPolicy).toEqual({ Name: 'on-failure', MaximumRetryCount: 5 });
    });

    it('maps on-failure without a count to 0 (unlimited)', () => {
      const options = toCreateOptions(request({ restartPolicy: { name: 'on-failure' } }));
      expect(options.HostConfig?.RestartPolicy).toEqual({ Name: 'on-failure', MaximumRetryCount: 0 });
    });

    it('maps no and always, dropping a retry count Docker would reject', () => {
      expect(toCreateOptions(request({ restartPolicy: { name: 'no' } })).HostConfig?.RestartPolicy).toEqual({
        Name: 'no',
        MaximumRetryCount: 0,
      });
      expect(toCreateOptions(request({ restartPolicy: { name: 'always', maximumRetryCount: 3 } })).HostConfig?.RestartPolicy).toEqual({
        Name: 'always',
        MaximumRetryCount: 0,
      });
    });
  });

  it('maps resources to Memory bytes and NanoCpus', () => {
    const options = toCreateOptions(request({ resources: { memory: '128m', cpus: 0.5 } }));
    expect(options.HostConfig?.Memory).toBe(134_217_728);
    expect(options.HostConfig?.NanoCpus).toBe(500_000_000);
    // 0.067 * 1e9 is 67000000.00000001 in floating point; Docker wants an integer.
    expect(toCreateOptions(request({ resources: { cpus: 0.067 } })).HostConfig?.NanoCpus).toBe(67_000_000);
    expect(toCreateOptions(request({ resources: { memory: '64Mi' } })).HostConfig).not.toHaveProperty('NanoCpus');
  });

  it('maps privileged, capAdd, capDrop and networkMode', () => {
    const options = toCreateOptions(
      request({ privileged: true, capAdd: ['NET_ADMIN', 'SYS_TIME'], capDrop: ['ALL'], networkMode: 'host' }),
    );
    expect(options.HostConfig?.Privileged).toBe(true);
    expect(options.HostConfig?.CapAdd).toEqual(['NET_ADMIN', 'SYS_TIME']);
    expect(options.HostConfig?.CapDrop).toEqual(['ALL']);
    expect(options.HostConfig?.NetworkMode).toBe('host');
    expect(toCreateOptions(request({ privileged: false })).HostConfig?.Privileged).toBe(false);
  });

  it('puts networkAliases on the endpoint of the user-defined network', () => {
    const options = toCreateOptions(request({ networkMode: 'site-net', networkAliases: ['gateway', 'gw'] }));
    expect(options.HostConfig?.NetworkMode).toBe('site-net');
    expect(options.NetworkingConfig).toEqual({ EndpointsConfig: { 'site-net': { Aliases: ['gateway', 'gw'] } } });
    expect(toCreateOptions(request({ networkMode: 'site-net' }))).not.toHaveProperty('NetworkingConfig');
  });

  it('merges user labels with Flotilla labels', () => {
    const options = toCreateOptions(request({ labels: { 'com.example.team': 'edge', tier: 'sensor' } }));
    expect(options.Labels).toEqual({
      'com.example.team': 'edge',
      tier: 'sensor',
      'flotilla.managed': 'true',
      'flotilla.app': 'sensor-gateway',
      'flotilla.container': 'gateway',
      'flotilla.app-revision': '7',
      'flotilla.spec-hash': '0123456789abcdef',
      'flotilla.device': 'dev-1',
    });
  });

  describe('healthcheck', () => {
    it('maps an exec check to a Docker CMD healthcheck with nanosecond durations', () => {
      const options = toCreateOptions(
        request({ healthcheck: { exec: ['/bin/check', '--quick'], interval: '5s', timeout: '1500ms', startPeriod: '1m', retries: 3 } }),
      );
      expect(options.Healthcheck).toEqual({
        Test: ['CMD', '/bin/check', '--quick'],
        Interval: 5_000_000_000,
        Timeout: 1_500_000_000,
        StartPeriod: 60_000_000_000,
        Retries: 3,
      });
    });

    it('maps an exec check without timings to Test only, leaving Docker defaults', () => {
      expect(toCreateOptions(request({ healthcheck: { exec: ['true'] } })).Healthcheck).toEqual({ Test: ['CMD', 'true'] });
    });

    it('maps http and tcp checks to nothing: the agent probes those itself', () => {
      expect(toCreateOptions(request({ healthcheck: { http: 'http://localhost:80/healthz', interval: '5s' } }))).not.toHaveProperty(
        'Healthcheck',
      );
      expect(toCreateOptions(request({ healthcheck: { tcp: 'localhost:1883' } }))).not.toHaveProperty('Healthcheck');
    });
  });

  it('ignores auth: credentials are for pulling, never part of the container', () => {
    const options = toCreateOptions(request({ auth: { username: 'ci', password: 's3cret' } }));
    expect(JSON.stringify(options)).not.toContain('s3cret');
    expect(options).toStrictEqual(toCreateOptions(request()));
  });

  it('maps the full example spec from the design', () => {
    const options = toCreateOptions(
      request({
        command: ['/app/gateway'],
        env: [
          { name: 'LOG_LEVEL', value: 'info' },
          { name: 'TOKEN', fromSecret: 'gw-token' },
        ],
        ports: ['8080:80'],
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
      }),
    );
    expect(options).toStrictEqual({
      name: 'sensor-gateway_gateway',
      Image: 'registry.local/sensor-gateway:1.4.2',
      Cmd: ['/app/gateway'],
      Env: ['LOG_LEVEL=info'],
      ExposedPorts: { '80/tcp': {} },
      Labels: {
        'flotilla.managed': 'true',
        'flotilla.app': 'sensor-gateway',
        'flotilla.container': 'gateway',
        'flotilla.app-revision': '7',
        'flotilla.spec-hash': '0123456789abcdef',
        'flotilla.device': 'dev-1',
      },
      HostConfig: {
        RestartPolicy: { Name: 'unless-stopped', MaximumRetryCount: 0 },
        PortBindings: { '80/tcp': [{ HostPort: '8080' }] },
        Mounts: [
          { Type: 'volume', Source: 'gateway-data', Target: '/data', ReadOnly: false },
          { Type: 'bind', Source: '/etc/gateway', Target: '/etc/gateway', ReadOnly: true },
        ],
        Devices: [{ PathOnHost: '/dev/ttyACM0', PathInContainer: '/dev/ttyACM0', CgroupPermissions: 'rwm' }],
        Tmpfs: { '/dev/shm': 'size=64m' },
        ShmSize: 67_108_864,
        DeviceRequests: [{ Driver: '', Count: -1, Capabilities: [['gpu']] }],
        Memory: 134_217_728,
        NanoCpus: 500_000_000,
        Privileged: false,
        CapAdd: ['NET_ADMIN'],
        NetworkMode: 'bridge',
      },
    });
  });
});

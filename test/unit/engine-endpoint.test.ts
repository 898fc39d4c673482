/** Where the agent looks for the Docker Engine: the socket the start-up checks test is the one dockerode will dial. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { afterEach, describe, expect, it } from 'vitest';
import { engineEndpoint } from '../../agent/runtime/engine-endpoint.js';
import { scratchDir } from '../support/scratch.js';

const savedHome = process.env.HOME;
afterEach(() => {
  process.env.HOME = savedHome;
});

describe('engine endpoint', () => {
  it('is the system socket without DOCKER_HOST, and follows unix:// like the docker CLI', () => {
    process.env.HOME = scratchDir('flotilla-endpoint-home-');
    expect(engineEndpoint({})).toEqual({ socketPath: '/var/run/docker.sock' });
    expect(engineEndpoint({ DOCKER_HOST: '' })).toEqual({ socketPath: '/var/run/docker.sock' });
    expect(engineEndpoint({ DOCKER_HOST: 'unix:///run/user/1000/docker.sock' })).toEqual({ socketPath: '/run/user/1000/docker.sock' });
  });

  it("prefers the user's ~/.docker/run/docker.sock when there is one, as docker-modem does", () => {
    const home = scratchDir('flotilla-endpoint-home-');
    mkdirSync(join(home, '.docker', 'run'), { recursive: true });
    writeFileSync(join(home, '.docker', 'run', 'docker.sock'), '');
    process.env.HOME = home;
    expect(engineEndpoint({})).toEqual({ socketPath: join(home, '.docker', 'run', 'docker.sock') });
    expect(engineEndpoint({ DOCKER_HOST: 'unix://' })).toEqual({ socketPath: join(home, '.docker', 'run', 'docker.sock') });
  });

  it('has no socket for an engine over TCP', () => {
    expect(engineEndpoint({ DOCKER_HOST: 'tcp://10.0.0.5:2375' })).toEqual({ host: 'tcp://10.0.0.5:2375' });
    expect(engineEndpoint({ DOCKER_HOST: 'https://engine.local:2376' }).socketPath).toBeUndefined();
  });

  it('refuses ssh:// with a message naming what it speaks', () => {
    expect(() => engineEndpoint({ DOCKER_HOST: 'ssh://pi@gateway' })).toThrow(
      'DOCKER_HOST=ssh://pi@gateway: ssh:// Docker hosts are not supported by the Flotilla agent: use unix:// or tcp://',
    );
  });

  it('names the socket dockerode dials for the same DOCKER_HOST', () => {
    const saved = process.env.DOCKER_HOST;
    try {
      process.env.DOCKER_HOST = 'unix:///run/flotilla-test/docker.sock';
      const modem = new Dockerode().modem as { socketPath?: unknown };
      expect(engineEndpoint(process.env).socketPath).toBe(modem.socketPath);
    } finally {
      if (saved === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = saved;
    }
  });
});

/** The engine client's pure parts: where the engine is, how a reference is pulled, how a multiplexed log stream splits. */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { demuxFrames, engineEndpoint, registryAuthHeader, splitRepositoryTag } from '../../agent/runtime/engine-client.js';

function frame(type: number, text: string): Buffer {
  const payload = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = type;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

function demux(chunks: Buffer[]): { stdout: string[]; stderr: string[] } {
  const stream = new PassThrough();
  const out = { stdout: [] as string[], stderr: [] as string[] };
  demuxFrames(
    stream,
    (chunk) => out.stdout.push(chunk.toString()),
    (chunk) => out.stderr.push(chunk.toString()),
  );
  for (const chunk of chunks) stream.write(chunk);
  return out;
}

describe('engine endpoint', () => {
  it('is the default socket without DOCKER_HOST, and follows unix://, tcp:// and http:// like the docker CLI', () => {
    expect(engineEndpoint({})).toEqual({ protocol: 'http', socketPath: '/var/run/docker.sock' });
    expect(engineEndpoint({ DOCKER_HOST: 'unix:///run/user/1000/docker.sock' })).toEqual({
      protocol: 'http',
      socketPath: '/run/user/1000/docker.sock',
    });
    expect(engineEndpoint({ DOCKER_HOST: 'tcp://10.0.0.5:2375' })).toEqual({ protocol: 'http', host: '10.0.0.5', port: 2375 });
    expect(engineEndpoint({ DOCKER_HOST: 'tcp://engine.local' })).toEqual({ protocol: 'http', host: 'engine.local', port: 2375 });
  });

  it('refuses ssh:// with a message naming what it speaks', () => {
    expect(() => engineEndpoint({ DOCKER_HOST: 'ssh://pi@gateway' })).toThrow(/unix:\/\/, tcp:\/\/, http:\/\/ or https:\/\/ only/);
  });

  it('asks for the TLS files where DOCKER_CERT_PATH says when DOCKER_TLS_VERIFY is set', () => {
    expect(() => engineEndpoint({ DOCKER_HOST: 'tcp://10.0.0.5', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/nonexistent-certs' })).toThrow(
      /\/nonexistent-certs\/ca\.pem/,
    );
  });
});

describe('pull reference', () => {
  it('splits a tag, a digest or neither the way the engine expects, with "latest" rather than every tag', () => {
    expect(splitRepositoryTag('127.0.0.1:5000/flotilla-test/web:v1')).toEqual({
      repository: '127.0.0.1:5000/flotilla-test/web',
      tag: 'v1',
    });
    expect(splitRepositoryTag('127.0.0.1:5000/web')).toEqual({ repository: '127.0.0.1:5000/web', tag: 'latest' });
    expect(splitRepositoryTag('busybox')).toEqual({ repository: 'busybox', tag: 'latest' });
    const digest = `sha256:${'a'.repeat(64)}`;
    expect(splitRepositoryTag(`registry.local:5000/web@${digest}`)).toEqual({ repository: 'registry.local:5000/web', tag: digest });
  });
});

describe('registry credentials header', () => {
  it('is URL-safe base64 that keeps its padding, the form the engine decodes', () => {
    // In standard base64 this JSON is "eyJ1IjoiPj4+P3gifQ==": a "+" to replace, and padding to keep.
    const auth = { u: '>>>?x' };
    const header = registryAuthHeader(auth);
    expect(header).toBe('eyJ1IjoiPj4-P3gifQ==');
    expect(header.length % 4).toBe(0);
    expect(JSON.parse(Buffer.from(header, 'base64url').toString())).toEqual(auth);
  });
});

describe('multiplexed log stream', () => {
  it('splits stdout and stderr frames, across chunk boundaries and several frames per chunk', () => {
    const all = Buffer.concat([frame(1, 'out one\n'), frame(2, 'err one\n'), frame(1, 'out two\n')]);
    const out = demux([all.subarray(0, 5), all.subarray(5, 19), all.subarray(19)]);
    expect(out.stdout.join('')).toBe('out one\nout two\n');
    expect(out.stderr.join('')).toBe('err one\n');
  });

  it('passes a stream that is not multiplexed through as stdout', () => {
    const out = demux([Buffer.from('plain text from a tty\n'), Buffer.from('more\n')]);
    expect(out.stdout.join('')).toBe('plain text from a tty\nmore\n');
    expect(out.stderr).toEqual([]);
  });
});

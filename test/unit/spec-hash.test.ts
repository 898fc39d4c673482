import { describe, expect, it } from 'vitest';
import { specHash } from '../../agent/runtime/spec-hash.js';
import type { ContainerSpec } from '../../shared/index.js';
import { canonicalJson } from '../../shared/index.js';

const base: ContainerSpec = {
  name: 'gateway',
  image: 'registry.local/sensor-gateway:1.4.2',
  env: [{ name: 'LOG_LEVEL', value: 'info' }],
  ports: ['8080:80'],
  resources: { memory: '128m', cpus: 0.5 },
};

describe('specHash', () => {
  it('is 16 lowercase hex digits and deterministic', () => {
    expect(specHash(base)).toMatch(/^[0-9a-f]{16}$/);
    expect(specHash(base)).toBe(specHash(structuredClone(base)));
  });

  it('is stable under key order at every depth', () => {
    const reordered: ContainerSpec = {
      resources: { cpus: 0.5, memory: '128m' },
      ports: ['8080:80'],
      env: [{ value: 'info', name: 'LOG_LEVEL' }],
      image: 'registry.local/sensor-gateway:1.4.2',
      name: 'gateway',
    };
    expect(specHash(reordered)).toBe(specHash(base));
  });

  it('treats an undefined member like an absent one', () => {
    expect(specHash({ ...base, command: undefined })).toBe(specHash(base));
  });

  it('changes when the image changes', () => {
    expect(specHash({ ...base, image: 'registry.local/sensor-gateway:1.4.3' })).not.toBe(specHash(base));
  });

  it('changes when an env value changes, or one is added', () => {
    expect(specHash({ ...base, env: [{ name: 'LOG_LEVEL', value: 'debug' }] })).not.toBe(specHash(base));
    expect(specHash({ ...base, env: [...(base.env ?? []), { name: 'X', value: '1' }] })).not.toBe(specHash(base));
  });

  it('changes when array order changes (command order matters)', () => {
    expect(specHash({ ...base, command: ['a', 'b'] })).not.toBe(specHash({ ...base, command: ['b', 'a'] }));
  });

  it('ignores auth, so a rotated registry password does not recreate containers', () => {
    const withAuth = specHash({ ...base, auth: { username: 'ci', password: 'old' } });
    expect(withAuth).toBe(specHash(base));
    expect(specHash({ ...base, auth: { username: 'ci', password: 'new' } })).toBe(withAuth);
    expect(specHash({ ...base, auth: { username: 'other', fromSecret: 'pw' } })).toBe(withAuth);
  });
});

describe('canonicalJson', () => {
  it('sorts keys recursively and keeps array order', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } })).toBe('{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}');
  });
});

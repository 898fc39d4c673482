import { describe, expect, it } from 'vitest';
import { imageReferenceProblem } from '../../shared/image-reference.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;

describe('imageReferenceProblem', () => {
  it.each([
    'busybox',
    'busybox:1.36',
    'library/busybox:latest',
    'registry.local/sensor-gateway:1.4.2',
    '127.0.0.1:5000/flotilla-test/web:v2',
    'localhost:5000/web',
    'localhost/web',
    '[::1]:5000/web:1',
    'Registry.Example.com/team/web:V2_rc.1',
    'MyRegistry/web',
    'a__b/c-d/e.f_g---h:1',
    `web@${DIGEST}`,
    `registry.local/web:2@${DIGEST}`,
    DIGEST,
  ])('accepts %s as the engine does', (image) => {
    expect(imageReferenceProblem(image)).toBeUndefined();
  });

  it.each([
    ['Sensor:1', 'the repository name must be lowercase ("Sensor")'],
    ['registry.local/Team/web', 'the repository name must be lowercase ("Team")'],
    ['web:', 'the tag after ":" is empty'],
    ['web:v@1x', 'the digest "1x" is not ALGORITHM:HEX (e.g. sha256: and 64 hex digits)'],
    ['web:.hidden', 'the tag ".hidden" may hold only letters, digits, "_", "." and "-", at most 128, and not start with "." or "-"'],
    [
      `web:${'t'.repeat(129)}`,
      `the tag "${'t'.repeat(129)}" may hold only letters, digits, "_", "." and "-", at most 128, and not start with "." or "-"`,
    ],
    ['web@sha256:abc', 'the digest "sha256:abc" is not ALGORITHM:HEX (e.g. sha256: and 64 hex digits)'],
    ['/web', 'the repository name has an empty part (a "/" at its start or end, or "//")'],
    ['team//web', 'the repository name has an empty part (a "/" at its start or end, or "//")'],
    ['-web', '"-web" is not a repository name part: lowercase letters and digits, joined by ".", "_", "__" or "-"'],
    ['web_', '"web_" is not a repository name part: lowercase letters and digits, joined by ".", "_", "__" or "-"'],
    ['reg-.local/web', '"reg-.local" is not a registry host (HOST or HOST:PORT)'],
    [':1', 'the repository name is empty'],
    [`${'a'.repeat(256)}:1`, 'the repository name is 256 characters; at most 255'],
  ])('refuses %s: %s', (image, problem) => {
    expect(imageReferenceProblem(image)).toBe(problem);
  });
});

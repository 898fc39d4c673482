/** The in-memory tar the agent hands the engine for secret files, read back by GNU tar. */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { secretFileOwner, tarArchive } from '../../agent/runtime/secret-files.js';
import { scratchDir } from '../support/scratch.js';

describe('secret files tar', () => {
  it('is a ustar archive GNU tar lists and extracts with the modes, owners and bytes given', () => {
    const value = Buffer.concat([randomBytes(700), Buffer.from([0, 0xff])]);
    const longDir = `opt/${'d'.repeat(90)}`;
    const archive = tarArchive([
      { name: 'run', type: 'dir', mode: 0o755, uid: 0, gid: 0 },
      { name: 'run/secrets', type: 'dir', mode: 0o755, uid: 0, gid: 0 },
      { name: 'run/secrets/key', type: 'file', mode: 0o400, uid: 1000, gid: 1001, data: value },
      { name: `${longDir}/file-with-a-long-path`, type: 'file', mode: 0o444, uid: 0, gid: 0, data: Buffer.from('x') },
    ]);
    expect(archive.length % 512).toBe(0);
    const listing = execFileSync('tar', ['-tvf', '-', '--numeric-owner'], { input: archive }).toString();
    expect(listing).toMatch(/^drwxr-xr-x 0\/0 .* run\/$/m);
    expect(listing).toMatch(/^-r-------- 1000\/1001 +702 .* run\/secrets\/key$/m);
    expect(listing).toContain(`${longDir}/file-with-a-long-path`);

    const dir = scratchDir('flotilla-tar-');
    execFileSync('tar', ['-xf', '-', '-C', dir], { input: archive });
    expect(readFileSync(join(dir, 'run/secrets/key')).equals(value)).toBe(true);
    expect(statSync(join(dir, 'run/secrets/key')).mode & 0o777).toBe(0o400);
    expect(statSync(join(dir, 'run/secrets')).mode & 0o777).toBe(0o755);
  });

  it('owns the file by a numeric user, else root; a named user gets 0444', () => {
    expect(secretFileOwner(undefined)).toEqual({ uid: 0, gid: 0, mode: 0o400 });
    expect(secretFileOwner('1000')).toEqual({ uid: 1000, gid: 1000, mode: 0o400 });
    expect(secretFileOwner('1000:50')).toEqual({ uid: 1000, gid: 50, mode: 0o400 });
    expect(secretFileOwner('nobody')).toEqual({ uid: 0, gid: 0, mode: 0o444 });
  });
});

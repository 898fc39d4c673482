/**
 * The agent's record of digest references it loaded itself: what a new agent
 * process (a new object on the same data dir) reads back, that a write is
 * whole or not at all, and that a damaged file costs aliases, never a start.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IMAGE_ALIASES_FILE, ImageAliases } from '../../agent/images/image-aliases.js';
import { scratchDir } from '../support/scratch.js';

const REF = `127.0.0.1:5000/team/web@sha256:${'1'.repeat(64)}`;
const OTHER = `127.0.0.1:5000/team/api@sha256:${'2'.repeat(64)}`;
const ID = `sha256:${'a'.repeat(64)}`;
const ID2 = `sha256:${'b'.repeat(64)}`;

function collectingLogger(): { warnings: string[]; warn(obj: object, msg?: string): void } {
  const warnings: string[] = [];
  return { warnings, warn: (_obj, msg) => warnings.push(msg ?? '') };
}

describe('ImageAliases', () => {
  it('are read back by the next agent process on the same data dir', async () => {
    const dir = scratchDir('flotilla-aliases-');
    const first = ImageAliases.inDataDir(dir);
    await first.set(REF, ID);
    await first.set(OTHER, ID);

    const next = ImageAliases.inDataDir(dir);
    expect(await next.get(REF)).toBe(ID);
    expect((await next.referencesTo(ID)).sort()).toEqual([OTHER, REF].sort());
    expect(await next.get(`127.0.0.1:5000/team/web@sha256:${'3'.repeat(64)}`)).toBeUndefined();

    await next.delete(REF);
    expect(await ImageAliases.inDataDir(dir).get(REF)).toBeUndefined();
    expect(await ImageAliases.inDataDir(dir).get(OTHER)).toBe(ID);
  });

  it('keeps the last of several writes asked at once', async () => {
    const dir = scratchDir('flotilla-aliases-');
    const aliases = ImageAliases.inDataDir(dir);
    await Promise.all([aliases.set(REF, ID), aliases.set(REF, ID2), aliases.set(OTHER, ID), aliases.delete(OTHER)]);
    const reread = ImageAliases.inDataDir(dir);
    expect(await reread.get(REF)).toBe(ID2);
    expect(await reread.get(OTHER)).toBeUndefined();
    // Only the file: no temporary left beside it.
    expect(readdirSync(dir)).toEqual([IMAGE_ALIASES_FILE]);
  });

  it('refuses an image ID that is not a sha256 digest', async () => {
    const aliases = ImageAliases.inDataDir(scratchDir('flotilla-aliases-'));
    await expect(aliases.set(REF, 'abc123')).rejects.toThrow(/sha256:<64 hex>/);
    expect(await aliases.get(REF)).toBeUndefined();
  });

  it('leaves the file as it was when a write fails, and the map as the file has it', async () => {
    const dir = scratchDir('flotilla-aliases-');
    const aliases = ImageAliases.inDataDir(dir);
    await aliases.set(REF, ID);
    const before = readFileSync(join(dir, IMAGE_ALIASES_FILE), 'utf8');
    // A directory where the temporary file goes makes the write fail, root or not.
    mkdirSync(join(dir, `${IMAGE_ALIASES_FILE}.tmp`));

    await expect(aliases.set(OTHER, ID2)).rejects.toThrow(/EISDIR/);

    expect(readFileSync(join(dir, IMAGE_ALIASES_FILE), 'utf8')).toBe(before);
    expect(await aliases.get(OTHER)).toBeUndefined();
    expect(await aliases.get(REF)).toBe(ID);
  });

  it('starts empty from a damaged file, saying so, and drops entries without a valid image ID', async () => {
    const dir = scratchDir('flotilla-aliases-');
    writeFileSync(join(dir, IMAGE_ALIASES_FILE), '{"version":1,"aliases":{"a');
    const log = collectingLogger();
    expect(await new ImageAliases(join(dir, IMAGE_ALIASES_FILE), log).get(REF)).toBeUndefined();
    expect(log.warnings).toEqual(['the image aliases file is not JSON; starting without them']);

    writeFileSync(join(dir, IMAGE_ALIASES_FILE), JSON.stringify({ version: 1, aliases: { [REF]: ID, [OTHER]: 'latest' } }));
    const partly = new ImageAliases(join(dir, IMAGE_ALIASES_FILE), log);
    expect(await partly.get(REF)).toBe(ID);
    expect(await partly.get(OTHER)).toBeUndefined();
    expect(log.warnings).toContain('image alias without a valid image ID; dropped');
  });
});

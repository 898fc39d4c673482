/**
 * The log ledger's file (log-cursor.ts), beside the agent's own store.
 *
 * Written in place (the same blocks, padded to a whole block, no truncation
 * unless it shrinks by one) rather than replaced: the ledger is saved before
 * every log batch goes out, and the kernel coalesces the rewrites of a dirty
 * page, writing it back to the flash when it expires, not once per save. A save survives the agent being killed (it is in the kernel once the
 * write returns); a power cut may lose the last seconds or tear the file,
 * which then reads as absent and the agent falls back to following from its
 * own start (a gap, never a duplicate).
 */
import { closeSync, constants, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { LedgerJson } from './log-cursor.js';

const BLOCK = 4096;

export class CursorFile {
  constructor(private readonly path: string) {}

  /** The saved ledger; undefined when there is none or it cannot be read. */
  load(): LedgerJson | undefined {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch {
      return undefined;
    }
    try {
      const json = JSON.parse(text) as LedgerJson;
      if (json?.v !== 1 || typeof json.shipped !== 'object' || !Array.isArray(json.batches)) return undefined;
      return json;
    } catch {
      return undefined;
    }
  }

  save(json: LedgerJson): void {
    const text = JSON.stringify(json);
    const size = Math.ceil((Buffer.byteLength(text) + 1) / BLOCK) * BLOCK;
    // Trailing spaces are whitespace to JSON.parse: the padding keeps the file's size, and its blocks, stable.
    const buffer = Buffer.alloc(size, 0x20);
    buffer.write(text, 0, 'utf8');
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    const fd = openSync(this.path, constants.O_RDWR | constants.O_CREAT, 0o600);
    try {
      writeSync(fd, buffer, 0, size, 0);
      if (fstatSync(fd).size > size) ftruncateSync(fd, size);
    } finally {
      closeSync(fd);
    }
  }
}

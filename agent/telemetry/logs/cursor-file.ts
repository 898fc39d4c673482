/**
 * The log ledger's file in one place (log-cursor.ts), used where no directory
 * in RAM is available for it (ledger-files.ts has the usual arrangement).
 *
 * Written in place (the same blocks, padded to a whole block, no truncation
 * unless it shrinks by one) rather than replaced: saved before every log
 * batch goes out, the kernel coalesces the rewrites of a dirty page and
 * writes it back to the flash when it expires, not once per save. A save
 * survives the agent being killed (it is in the kernel once the write
 * returns). A power cut may tear the file, which then reads as absent (the
 * next agent follows from its own start: a gap), or leave it as it was up
 * to the kernel's writeback delay (~30 s) earlier, and the next agent then
 * sends the lines after it again under new seqs: the RAM arrangement of
 * ledger-files.ts never does that.
 */
import { closeSync, constants, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { LedgerJson } from './log-cursor.js';

const BLOCK = 4096;

/** Where the log collector keeps its ledger. */
export interface LedgerStore {
  /** The saved ledger; undefined when there is none or it cannot be trusted. */
  load(): LedgerJson | undefined;
  /** Before a batch is published: once this returns, the record must outlive the agent process (kill -9). */
  save(json: LedgerJson): void;
  /** At a clean stop: once this returns, the record must outlive a reboot. */
  persist(json: LedgerJson): void;
}

/** A ledger file's content; undefined when it is absent, torn or not a ledger. */
export function readLedgerFile(path: string): LedgerJson | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
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

export class CursorFile implements LedgerStore {
  constructor(private readonly path: string) {}

  load(): LedgerJson | undefined {
    return readLedgerFile(this.path);
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

  persist(json: LedgerJson): void {
    this.save(json);
  }
}

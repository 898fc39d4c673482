/**
 * What one process writes to disk and sends on one TCP connection, read from
 * the kernel:
 * - /proc/<pid>/io: `write_bytes` counts the bytes the process caused to be
 *   written to the block layer (a page is counted when the process dirties
 *   it, so rewriting a page that is still dirty counts once; a page written
 *   back and dirtied again counts again; mmap writes such as SQLite's -shm
 *   count too). `cancelled_write_bytes`: dirty pages truncated before they
 *   reached the disk. The filesystem's journal is written by jbd2 and is in
 *   neither.
 * - inotify (fs.watch) on a directory: modify notifications per file name,
 *   to tell which file the writes went to. Identical consecutive events the
 *   watcher has not read yet are merged by the kernel: a lower bound on
 *   write calls. mmap writes are not reported.
 * - `ss -ti`: one socket's TCP counters (segments in and out, ACKs
 *   included), to put a number on TCP/IP overhead beyond the payload.
 */
import { execFileSync } from 'node:child_process';
import { type FSWatcher, readdirSync, readFileSync, statSync, watch } from 'node:fs';
import { join } from 'node:path';

export interface ProcIo {
  /** Bytes passed to write-like syscalls (sockets and pipes too). */
  wchar: number;
  writeBytes: number;
  cancelledWriteBytes: number;
}

export function readProcIo(pid: number): ProcIo {
  const fields = Object.fromEntries(
    readFileSync(`/proc/${pid}/io`, 'utf8')
      .trim()
      .split('\n')
      .map((line) => {
        const [key, value] = line.split(':');
        return [key!.trim(), Number(value)];
      }),
  ) as Record<string, number>;
  return { wchar: fields.wchar ?? 0, writeBytes: fields.write_bytes ?? 0, cancelledWriteBytes: fields.cancelled_write_bytes ?? 0 };
}

export function diffIo(before: ProcIo, after: ProcIo): ProcIo {
  return {
    wchar: after.wchar - before.wchar,
    writeBytes: after.writeBytes - before.writeBytes,
    cancelledWriteBytes: after.cancelledWriteBytes - before.cancelledWriteBytes,
  };
}

export interface WriteWatcher {
  /** Modify notifications per file name since the start. */
  counts(): Record<string, number>;
  close(): void;
}

/** Counts modify notifications per file in `dir` (not recursive). */
export function watchWrites(dir: string): WriteWatcher {
  const counts: Record<string, number> = {};
  const watcher: FSWatcher = watch(dir, (event, filename) => {
    if (event === 'change' && filename) counts[filename] = (counts[filename] ?? 0) + 1;
  });
  watcher.on('error', () => undefined);
  return { counts: () => ({ ...counts }), close: () => watcher.close() };
}

export function diffCounts(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, n] of Object.entries(after)) if (n !== (before[name] ?? 0)) out[name] = n - (before[name] ?? 0);
  return out;
}

/** Every file's size in `dir`. */
export function fileSizes(dir: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of readdirSync(dir)) {
    try {
      out[name] = statSync(join(dir, name)).size;
    } catch {
      // removed meanwhile
    }
  }
  return out;
}

export interface TcpCounters {
  bytesSent: number;
  bytesReceived: number;
  segsOut: number;
  segsIn: number;
}

/**
 * The counters of the one established TCP socket connected to 127.0.0.1:`port`
 * (the client's side), or undefined if there is none or several.
 */
export function tcpCounters(port: number): TcpCounters | undefined {
  let out: string;
  try {
    out = execFileSync('ss', ['-tinH', 'state', 'established', 'dst', `127.0.0.1:${port}`], { encoding: 'utf8', timeout: 5_000 });
  } catch {
    return undefined;
  }
  const infos = out.split('\n').filter((line) => /segs_out:/.test(line));
  if (infos.length !== 1) return undefined;
  const field = (name: string) => Number(infos[0]!.match(new RegExp(`\\b${name}:(\\d+)`))?.[1] ?? 0);
  return { bytesSent: field('bytes_sent'), bytesReceived: field('bytes_received'), segsOut: field('segs_out'), segsIn: field('segs_in') };
}

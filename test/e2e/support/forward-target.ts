/**
 * The servers a port-forward test reaches in an app's container (the busybox
 * web image with its command replaced):
 * - :80   busybox httpd serving /www, with /www/big: 10 MiB of random bytes;
 * - :9001 a sink that accepts and never reads (`nc -ll -e sleep`): a sender's
 *         bytes stop at the first buffer that stops taking them;
 * - :9002 an endless source (`nc -ll -e cat /dev/zero`);
 * - :9003 an echo server (`nc -ll -e cat`), for round trips.
 * SIGTERM stops it at once.
 */
import { readFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';

export const BIG_FILE_BYTES = 10 * 1024 * 1024;

export const FORWARD_TARGET_COMMAND = [
  '/bin/sh',
  '-c',
  [
    'mkdir -p /www && echo v1 > /www/index.html',
    `head -c ${BIG_FILE_BYTES} /dev/urandom > /www/big`,
    'httpd -f -p 80 -h /www &',
    'nc -ll -p 9001 -e sleep 3600 &',
    'nc -ll -p 9002 -e cat /dev/zero &',
    'nc -ll -p 9003 -e cat &',
    "trap 'exit 0' TERM INT",
    'wait',
  ].join('\n'),
];

/** GET `path` over a fresh connection (HTTP/1.0, one request per connection); resolves with the body once the server closes. */
export function httpGetRaw(port: number, path: string, onBody?: (chunk: Buffer) => void): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let head = Buffer.alloc(0);
    let status = 0;
    let bytes = 0;
    socket.on('connect', () => socket.write(`GET ${path} HTTP/1.0\r\nHost: device\r\n\r\n`));
    socket.on('data', (chunk: Buffer) => {
      if (status === 0) {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        status = Number(head.subarray(0, end).toString().split(' ')[1]);
        chunk = head.subarray(end + 4);
      }
      bytes += chunk.length;
      onBody?.(chunk);
    });
    socket.on('end', () => resolve({ status, bytes }));
    socket.on('error', reject);
  });
}

/** A connection that is never read from: Node stops reading, so the kernel's buffers fill and the window closes behind them. */
export function connectNeverReading(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.pause();
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Resident memory of a process, MiB, from /proc/<pid>/status. */
export function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  if (line === undefined) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(line.split(/\s+/)[1]) / 1024;
}

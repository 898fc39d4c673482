import { readFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';

/**
 * A TCP port on 127.0.0.1 that was free a moment ago (for processes that need a port number up front).
 *
 * It comes from below the kernel's ephemeral range when there is room there: a port the kernel hands
 * out for `listen(0)` is one it also hands out as the source port of outgoing connections, so between
 * this call and the process binding it, any connection on the machine could take it (seen in CI as a
 * hub refusing to start on a port "already in use").
 */
export async function freePort(): Promise<number> {
  const range = portsBelowEphemeral();
  if (range) {
    for (let attempt = 0; attempt < 50; attempt++) {
      const port = range.low + Math.floor(Math.random() * (range.high - range.low));
      if (handedOut.has(port)) continue;
      if (await canListen(port)) {
        handedOut.add(port);
        return port;
      }
    }
  }
  return kernelPort();
}

/** Ports this process returned already, so two callers in one test never get the same one. */
const handedOut = new Set<number>();

function portsBelowEphemeral(): { low: number; high: number } | undefined {
  let ephemeralLow = 32768;
  try {
    ephemeralLow = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  } catch {
    // not Linux: assume the IANA-style default below
  }
  const low = 20000;
  return ephemeralLow - low >= 4096 ? { low, high: ephemeralLow } : undefined;
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

function kernelPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * The telemetry commands' rendering (pure), and the client's follow streams
 * against a real HTTP server on loopback that speaks Server-Sent Events the
 * way the hub does.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HubClient, HubError, HubStreamClosedError } from '../../cli/client.js';
import { eventCells } from '../../cli/commands/events.js';
import { formatLogLine } from '../../cli/commands/logs.js';
import { metricsText } from '../../cli/commands/metrics.js';
import { topTable } from '../../cli/commands/top.js';
import { EXIT_HUB_ERROR, EXIT_NOT_FOUND } from '../../cli/errors.js';
import { backlogThenFollow } from '../../cli/telemetry.js';
import type { LogRecord, MetricsSample } from '../../shared/index.js';

const PLAIN = { prefix: true, timestamps: false, color: false };

function log(overrides: Partial<LogRecord>): LogRecord {
  return {
    id: 1,
    device: 'pi-1',
    app: 'gateway',
    container: 'main',
    stream: 'stdout',
    ts: '2026-11-28T09:00:00.123456789Z',
    line: 'hello',
    ...overrides,
  };
}

describe('formatLogLine', () => {
  it('prefixes app/container, padded, and tags stderr and system lines', () => {
    expect(formatLogLine(log({}), PLAIN, 14)).toBe('gateway/main   | hello\n');
    expect(formatLogLine(log({ stream: 'stderr', line: 'boom' }), PLAIN)).toBe('gateway/main | [stderr] boom\n');
    expect(formatLogLine(log({ stream: 'system', line: 'suppressed 1200 lines', suppressed: 1200 }), PLAIN)).toBe(
      'gateway/main | [system] suppressed 1200 lines\n',
    );
    expect(formatLogLine(log({ stream: 'system', line: '', suppressed: 7 }), PLAIN)).toBe('gateway/main | [system] suppressed 7 lines\n');
  });

  it("shows Docker's timestamp after the prefix with -t, drops the prefix with --no-prefix, and marks a cut line", () => {
    expect(formatLogLine(log({}), { ...PLAIN, timestamps: true })).toBe('gateway/main | 2026-11-28T09:00:00.123456789Z hello\n');
    expect(formatLogLine(log({ truncated: true }), { ...PLAIN, prefix: false })).toBe('hello [truncated]\n');
  });

  it("does not let a device's line move the cursor", () => {
    expect(formatLogLine(log({ line: '\u001b[2Jwiped\r' }), { ...PLAIN, prefix: false })).toBe('?[2Jwiped \n');
  });

  it('colours the stderr tag on a terminal', () => {
    expect(formatLogLine(log({ stream: 'stderr', line: 'boom' }), { ...PLAIN, color: true })).toBe(
      'gateway/main | \u001b[31m[stderr]\u001b[0m boom\n',
    );
  });
});

describe('eventCells', () => {
  it('shows time to the second, app/container, and - without an app', () => {
    expect(
      eventCells({
        id: 1,
        device: 'pi-1',
        seq: 3,
        ts: '2026-11-28T09:00:00.5Z',
        type: 'started',
        app: 'gateway',
        container: 'main',
        message: 'ok',
      }),
    ).toEqual(['2026-11-28T09:00:00Z', 'pi-1', 'started', 'gateway/main', 'ok']);
    expect(eventCells({ id: 2, device: 'pi-1', seq: 4, ts: '2026-11-28T09:00:01Z', type: 'agent-started', message: 'hi\nthere' })[3]).toBe(
      '-',
    );
  });
});

describe('topTable', () => {
  it('shows usage and link bytes in binary units (per day averaged since the hub began counting), and dashes for a device that never sent a sample', () => {
    const now = Date.parse('2026-11-28T09:00:10Z');
    const text = topTable(
      {
        devices: [
          { id: 'pi-2', online: false },
          {
            id: 'pi-1',
            online: true,
            ts: '2026-11-28T09:00:05Z',
            cpuPercent: 12.34,
            load1: 0.5,
            memUsedBytes: 512 * 1024 ** 2,
            memTotalBytes: 2 * 1024 ** 3,
            diskUsedBytes: 3 * 1024 ** 3,
            diskTotalBytes: 16 * 1024 ** 3,
            temperatureC: 48.5,
            containers: 2,
            // Two days of counting: 3 MiB in and 1 MiB out make 2 MiB a day.
            linkBytesIn: 3 * 1024 ** 2,
            linkBytesOut: 1024 ** 2,
            linkBytesSince: '2026-11-26T09:00:10Z',
          },
        ],
      },
      now,
    );
    expect(text).toBe(
      [
        'DEVICE   ONLINE   CPU%   LOAD   MEM                 DISK               TEMP     CONTAINERS   AGE      LINK IN/OUT       LINK/DAY',
        'pi-1     yes      12.3   0.50   512.0 MiB/2.0 GiB   3.0 GiB/16.0 GiB   48.5°C   2            5s       3.0 MiB/1.0 MiB   2.0 MiB',
        'pi-2     no       -      -      -                   -                  -        -            <none>   -                 -',
        '',
      ].join('\n'),
    );
  });
});

describe('metricsText', () => {
  function sample(ts: string, rx: number, tx: number): MetricsSample {
    return {
      device: 'pi-1',
      seq: 1,
      ts,
      host: {
        cpuPercent: 25,
        cpuCount: 4,
        load1: 1,
        load5: 1,
        load15: 1,
        memTotalBytes: 1024 ** 3,
        memAvailableBytes: 768 * 1024 ** 2,
        memUsedBytes: 256 * 1024 ** 2,
        disks: [{ name: 'root', path: '/', usedBytes: 1024 ** 3, freeBytes: 1024 ** 3, totalBytes: 2 * 1024 ** 3 }],
        netRxBytes: rx,
        netTxBytes: tx,
        uptimeSeconds: 100,
      },
      containers: [
        {
          app: 'gateway',
          container: 'main',
          id: 'abc',
          cpuPercent: 5,
          memBytes: 64 * 1024 ** 2,
          memLimitBytes: 128 * 1024 ** 2,
          netRxBytes: 2048,
          netTxBytes: 1024,
          blkReadBytes: 0,
          blkWriteBytes: 4096,
          pids: 3,
          restartCount: 1,
        },
      ],
    };
  }

  it('shows network rates between samples and the newest sample per container', () => {
    const text = metricsText({
      device: 'pi-1',
      samples: [sample('2026-11-28T09:00:00Z', 0, 0), sample('2026-11-28T09:00:10Z', 10240, 1000)],
    });
    expect(text).toContain('2026-11-28T09:00:00Z   25.0   1.00   256.0 MiB/1.0 GiB   1.0 GiB/2.0 GiB   -      -\n');
    expect(text).toContain('1.0 KiB/s / 100 B/s');
    expect(text).toContain('Containers at 2026-11-28T09:00:10Z:\n');
    expect(text).toMatch(/gateway\s+main\s+5\.0\s+64\.0 MiB\/128\.0 MiB\s+2\.0 KiB\/1\.0 KiB\s+0 B\/4\.0 KiB\s+3\s+1\n/);
    expect(text).not.toContain('Link:');
  });

  it("ends with what the device's link carried since the hub began counting, and per day once a minute has passed", () => {
    const link = { linkBytesIn: 3 * 1024 ** 2, linkBytesOut: 1024 ** 2, linkBytesSince: '2026-11-26T09:00:10Z' };
    const samples = [sample('2026-11-28T09:00:00Z', 0, 0)];
    expect(metricsText({ device: 'pi-1', samples, ...link }, Date.parse('2026-11-28T09:00:10Z'))).toMatch(
      /\nLink: 3\.0 MiB from the device, 1\.0 MiB to it since 2026-11-26T09:00:10Z \(2\.0 MiB\/day\)\n$/,
    );
    // Thirty seconds of counting are mostly the connection's start: no average yet.
    const early = metricsText({ device: 'pi-1', samples, ...link }, Date.parse('2026-11-26T09:00:40Z'));
    expect(early).toMatch(/\nLink: 3\.0 MiB from the device, 1\.0 MiB to it since 2026-11-26T09:00:10Z\n$/);
  });
});

describe('HubClient follow streams', () => {
  let servers: Server[] = [];

  afterEach(async () => {
    const closing = servers;
    servers = [];
    await Promise.all(
      closing.map((server) => {
        server.closeAllConnections();
        return new Promise((resolve) => server.close(resolve));
      }),
    );
  });

  /** A server whose one route is handled by `handler`; resolves to a client for it. */
  async function serve(
    handler: (url: URL, res: ServerResponse) => void,
    options: { followIdleTimeoutMs?: number } = {},
  ): Promise<HubClient> {
    const created = createServer((req, res) => handler(new URL(req.url ?? '/', 'http://x'), res));
    servers.push(created);
    await new Promise<void>((resolve) => created.listen(0, '127.0.0.1', resolve));
    return new HubClient(`http://127.0.0.1:${(created.address() as AddressInfo).port}`, options);
  }

  function sse(res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders();
  }

  it('yields records as they are written, sends the cursor, and ends quietly when the caller aborts', async () => {
    let seen: URL | undefined;
    const client = await serve((url, res) => {
      seen = url;
      sse(res);
      res.write(': ping\n\n');
      res.write(`event: log\ndata: ${JSON.stringify(log({ id: 5 }))}\n\n`);
      res.write('event: other\ndata: {}\n\n');
      res.write(`event: log\ndata: ${JSON.stringify(log({ id: 6 })).slice(0, 10)}`);
      setTimeout(() => res.write(`${JSON.stringify(log({ id: 6 })).slice(10)}\n\n`), 50);
    });
    const controller = new AbortController();
    const ids: number[] = [];
    for await (const record of client.followLogs('pi-1', { app: 'gateway', afterId: 4 }, controller.signal)) {
      ids.push(record.id);
      if (ids.length === 2) controller.abort();
    }
    expect(ids).toEqual([5, 6]);
    expect(seen?.pathname).toBe('/api/v1/devices/pi-1/logs');
    expect(Object.fromEntries(seen?.searchParams ?? [])).toEqual({ app: 'gateway', afterId: '4', follow: 'true' });
  });

  it('reports "hub closed the stream" (exit 1) when the hub ends it', async () => {
    const client = await serve((_url, res) => {
      sse(res);
      res.end(`event: event\ndata: {"id":1}\n\n`);
    });
    const iterator = client.followEvents({}, new AbortController().signal);
    expect((await iterator.next()).value).toEqual({ id: 1 });
    const error = await iterator.next().catch((err: unknown) => err);
    expect(error).toBeInstanceOf(HubStreamClosedError);
    expect((error as HubStreamClosedError).message).toMatch(/^hub closed the stream/);
    expect((error as HubStreamClosedError).exitCode).toBe(EXIT_HUB_ERROR);
  });

  it('reports "hub closed the stream" when the connection breaks mid-stream', async () => {
    const client = await serve((_url, res) => {
      sse(res);
      res.write('event: event\ndata: {"id":1}\n\n');
      setTimeout(() => res.socket?.destroy(), 50);
    });
    const iterator = client.followEvents({}, new AbortController().signal);
    await iterator.next();
    await expect(iterator.next()).rejects.toBeInstanceOf(HubStreamClosedError);
  });

  it("turns the hub's JSON error into a HubError with its exit code before streaming", async () => {
    const client = await serve((_url, res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'not_found', message: 'device "nope" not found' } }));
    });
    const error = await client
      .followLogs('nope', {}, new AbortController().signal)
      .next()
      .catch((err: unknown) => err);
    expect(error).toBeInstanceOf(HubError);
    expect((error as HubError).exitCode).toBe(EXIT_NOT_FOUND);
    expect((error as HubError).message).toBe('device "nope" not found');
  });

  it('refuses a body that is not an event stream', async () => {
    const client = await serve((_url, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"lines":[]}');
    });
    await expect(client.followLogs('pi-1', {}, new AbortController().signal).next()).rejects.toThrow(/not an event stream/);
  });

  it('backlogThenFollow picks up from its cursor when a stream that brought records ends, and gives up on one that brought none', async () => {
    const cursors: (string | null)[] = [];
    const client = await serve((url, res) => {
      cursors.push(url.searchParams.get('afterId'));
      sse(res);
      const connection = cursors.length;
      const ids = connection === 1 ? [2, 3] : connection === 2 ? [3, 4] : [];
      res.end(ids.map((id) => `event: log\ndata: ${JSON.stringify(log({ id }))}\n\n`).join(''));
    });
    const printed: number[] = [];
    const error = await backlogThenFollow(
      {
        backlog: async () => [log({ id: 1 })],
        follow: (afterId, signal) => client.followLogs('pi-1', afterId === undefined ? {} : { afterId }, signal),
        printBacklog: (records) => printed.push(...records.map((r) => r.id)),
        printRecord: (record) => printed.push(record.id),
      },
      true,
    ).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(HubStreamClosedError);
    expect(printed).toEqual([1, 2, 3, 4]);
    expect(cursors).toEqual(['1', '3', '4']);
  });

  it('takes a stream that brings nothing, not even keep-alives, for the idle timeout as closed; keep-alives keep it open', async () => {
    const silent = await serve(
      (_url, res) => {
        sse(res);
        res.write(': following\n\n');
      },
      { followIdleTimeoutMs: 300 },
    );
    const error = await silent
      .followLogs('pi-1', {}, new AbortController().signal)
      .next()
      .catch((err: unknown) => err);
    expect(error).toBeInstanceOf(HubStreamClosedError);
    expect((error as Error).message).toBe('hub closed the stream: nothing received for 0.3s');

    const pinging = await serve(
      (_url, res) => {
        sse(res);
        const ping = setInterval(() => res.write(': ping\n\n'), 100);
        setTimeout(() => {
          clearInterval(ping);
          res.write(`event: log\ndata: ${JSON.stringify(log({ id: 9 }))}\n\n`);
        }, 700);
        res.on('close', () => clearInterval(ping));
      },
      { followIdleTimeoutMs: 300 },
    );
    const controller = new AbortController();
    const first = await pinging.followLogs('pi-1', {}, controller.signal).next();
    controller.abort();
    expect(first.value).toMatchObject({ id: 9 });
  });
});

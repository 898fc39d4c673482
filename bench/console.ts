/**
 * The web console's weight and first render, in Debian's Chromium against
 * real hubs and simulated fleets:
 *
 *   npx tsx bench/console.ts [--devices 1000] [--baseline-devices 10] [--runs 7] [--json]
 *
 * Setup: the console built from this checkout (broker/console/build.mjs), two
 * `flotilla server` processes on loopback (anonymous clients allowed there, so
 * the page opens without a key), one with --devices simulated devices and one
 * with --baseline-devices, each device a real agent (link, store, reconciler)
 * over an in-memory engine in this process (test/support/sim/fleet.ts).
 *
 * 1. Page weight: bytes on the wire (headers and body as the hub sent them,
 *    compressed by what Chromium accepts) of everything the page loads from
 *    the hub apart from API calls: for the fleet page (`/`), and for the
 *    biggest page, a device with its metrics (uPlot) and terminal (xterm.js,
 *    loaded as a session opens: a host shell on a simulated device) tabs opened. Each file is also fetched with `Accept-Encoding: gzip` alone
 *    (what the issue's budget counts), and the whole build's gzip total is the
 *    upper bound of any page. Budget: 300 KB (1 KB = 1,000 bytes) compressed.
 * 2. First render: from navigation start (performance.timeOrigin) to the
 *    first frame in which the fleet table holds every device (its
 *    aria-rowcount; rows beyond what fits are windowed) with rows drawn, in a
 *    fresh browser context each time (nothing cached), --runs times, the
 *    three pages alternating: the console with the big fleet, the console
 *    with the baseline fleet, and a static HTML table of the big fleet's rows
 *    (every row in the DOM, no script). Medians and ratios. Goal: ≤ 1 s for
 *    1,000 devices.
 *
 * The process exits by itself; Ctrl-C stops everything it started.
 */
import { createServer, get as httpGet, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser } from '../test/support/chromium.js';
import { firstFleetRenderMs } from '../test/support/fleet-render.js';
import { type HubProcess, REPO_ROOT, startHubProcess, stopAll } from '../test/support/processes.js';
import { startFleet } from '../test/support/sim/fleet.js';
import { waitFor } from '../test/support/wait.js';
import { positiveInt } from './int-arg.js';
import { releasesOnExit } from './releases.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '1000' },
    'baseline-devices': { type: 'string', default: '10' },
    runs: { type: 'string', default: '7' },
    json: { type: 'boolean', default: false },
  },
});
const bigCount = positiveInt('devices', values.devices);
const smallCount = positiveInt('baseline-devices', values['baseline-devices']);
const runs = positiveInt('runs', values.runs);
const BUDGET_BYTES = 300_000;
const FIRST_RENDER_GOAL_MS = 1_000;

const say = (text: string) => {
  if (!values.json) console.error(text);
};
const releases = releasesOnExit(say);

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

const kb = (bytes: number) => `${(bytes / 1000).toFixed(1)} KB`;

interface FleetHub {
  hub: HubProcess;
  ids: string[];
}

/** A hub process and `count` simulated devices, all online. */
async function fleetHub(count: number, prefix: string): Promise<FleetHub> {
  const hub = await startHubProcess(undefined, ['--max-connect-rate-per-address', '0']);
  const fleet = await startFleet({
    hubUrl: hub.mqttUrl,
    count,
    idPrefix: prefix,
    labels: (i) => ({ site: `site-${i % 10}`, rack: `r${i % 7}` }),
    resyncIntervalMs: 60_000,
  });
  releases.push({ what: `${count} simulated devices`, run: () => fleet.close() });
  await waitFor(
    `${count} devices online at the hub`,
    async () => {
      const res = await fetch(`${hub.url}/api/v1/devices`);
      const items = ((await res.json()) as { items: { online: boolean }[] }).items;
      return items.filter((d) => d.online).length === count;
    },
    { timeoutMs: 300_000, intervalMs: 1_000 },
  );
  return { hub, ids: fleet.ids };
}

/** A page with the same rows as a static table: the cost of the DOM alone. */
async function staticTable(hub: HubProcess): Promise<{ server: Server; url: string }> {
  const res = await fetch(`${hub.url}/api/v1/devices`);
  const items = ((await res.json()) as { items: { id: string; online: boolean; labels: Record<string, string> }[] }).items;
  const escaped = (text: string) => text.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const rows = items
    .map(
      (d) =>
        `<tr data-device="${escaped(d.id)}"><td><a href="#/devices/${escaped(d.id)}">${escaped(d.id)}</a></td><td>${d.online ? 'online' : 'offline'}</td>` +
        `<td>${escaped(
          Object.entries(d.labels)
            .map(([k, v]) => `${k}=${v}`)
            .join(' '),
        )}</td><td>0/0</td><td>–</td><td>–</td><td>–</td></tr>`,
    )
    .join('\n');
  const page = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>static</title><link rel="icon" href="data:,"></head><body>
<table aria-label="Devices" aria-rowcount="${items.length + 1}"><thead><tr><th>Device</th><th>Status</th><th>Labels</th><th>Apps</th><th>CPU</th><th>Memory</th><th>Disk</th></tr></thead>
<tbody>${rows}</tbody></table></body></html>`;
  const server = createServer((_req, response) => {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    response.end(page);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  releases.push({ what: 'static table server', run: () => new Promise((resolve) => server.close(resolve)) });
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` };
}

interface Loaded {
  url: string;
  /** Headers and body as Chromium received them. */
  wireBytes: number;
  encoding: string;
}

/** Everything but API calls that a page loads from the hub while `visit` runs, in a fresh context. */
async function pageWeight(browser: Browser, visit: (page: Page) => Promise<void>): Promise<Loaded[]> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const loaded = new Map<string, Loaded>();
  const pending: Promise<void>[] = [];
  context.on('requestfinished', (request) => {
    const url = new URL(request.url());
    if (url.pathname.startsWith('/api/') || url.protocol === 'data:') return;
    pending.push(
      (async () => {
        const sizes = await request.sizes();
        const response = await request.response();
        loaded.set(request.url(), {
          url: url.pathname,
          wireBytes: sizes.responseHeadersSize + sizes.responseBodySize,
          encoding: (await response?.headerValue('content-encoding')) ?? 'identity',
        });
      })(),
    );
  });
  try {
    const page = await context.newPage();
    await visit(page);
    await page.waitForLoadState('networkidle').catch(() => undefined);
    await Promise.all(pending);
    return [...loaded.values()];
  } finally {
    await context.close();
  }
}

/** Bytes of a file's body when asked for gzip only, as the hub sends it (not decompressed). */
function gzipBytes(base: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    httpGet(`${base}${path}`, { headers: { 'accept-encoding': 'gzip' } }, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      res.on('end', () => resolve(bytes));
      res.on('error', reject);
    }).on('error', reject);
  });
}

async function main(): Promise<void> {
  const started = Date.now();
  say('building the console');
  const { buildConsole } = (await import(pathToFileURL(`${REPO_ROOT}/broker/console/build.mjs`).href)) as {
    buildConsole: (options?: { outDir?: string }) => Promise<string[]>;
  };
  const built = await buildConsole({ outDir: `${REPO_ROOT}/dist/console` });
  releases.push({ what: 'hubs', run: () => stopAll() });

  say(`starting a hub with ${bigCount} simulated devices and one with ${smallCount}`);
  const big = await fleetHub(bigCount, 'bench');
  const small = await fleetHub(smallCount, 'base');
  const table = await staticTable(big.hub);
  say(`fleets up after ${((Date.now() - started) / 1000).toFixed(0)} s; launching Chromium`);
  const browser = await launchBrowser();
  releases.push({ what: 'Chromium', run: () => browser.close() });

  // 1. Page weight.
  const device = small.ids[0]!;
  const fleetPage = await pageWeight(browser, async (page) => {
    await page.goto(`${small.hub.url}/`);
    await page.locator('table[aria-label="Devices"] tr[data-device]').first().waitFor({ timeout: 30_000 });
  });
  const devicePage = await pageWeight(browser, async (page) => {
    await page.goto(`${small.hub.url}/#/devices/${device}/metrics`);
    await page.locator('figure[data-chart]').first().waitFor({ timeout: 30_000 });
    await page.goto(`${small.hub.url}/#/devices/${device}/terminal`);
    // xterm.js loads as a session opens: what the page weighs once it shows a terminal.
    const xterm = page.waitForResponse((response) => /\/xterm-[^/]+\.js$/.test(response.url()), { timeout: 30_000 });
    await page.getByRole('button', { name: 'Open shell' }).click();
    await xterm;
    await page.locator('.xterm').waitFor({ timeout: 30_000 });
  });
  const weigh = async (files: Loaded[]) => ({
    files: files.length,
    wireBytes: files.reduce((n, f) => n + f.wireBytes, 0),
    encodings: [...new Set(files.map((f) => f.encoding))],
    gzipBodyBytes: (await Promise.all(files.map((f) => gzipBytes(small.hub.url, f.url)))).reduce((n, b) => n + b, 0),
  });
  const weights = {
    fleet: await weigh(fleetPage),
    deviceMetricsTerminal: await weigh(devicePage),
    wholeBuildGzipBytes: (
      await Promise.all(built.map((file) => gzipBytes(small.hub.url, file === 'index.html' ? '/' : `/console/${file}`)))
    ).reduce((n, b) => n + b, 0),
  };
  for (const [name, files] of [
    ['fleet', fleetPage],
    ['device', devicePage],
  ] as const) {
    for (const f of files) say(`  ${name}: ${f.url} ${f.wireBytes} B ${f.encoding}`);
  }
  say(
    `page weight: fleet ${kb(weights.fleet.wireBytes)} on the wire (${weights.fleet.encodings.join(', ')}), ${kb(weights.fleet.gzipBodyBytes)} gzip; ` +
      `device with metrics and terminal ${kb(weights.deviceMetricsTerminal.wireBytes)} on the wire, ${kb(weights.deviceMetricsTerminal.gzipBodyBytes)} gzip; ` +
      `whole build ${kb(weights.wholeBuildGzipBytes)} gzip; budget ${kb(BUDGET_BYTES)}`,
  );

  // 2. First render, the three pages alternating.
  const samples = { console: [] as number[], consoleBaseline: [] as number[], staticTable: [] as number[] };
  for (let run = 0; run < runs; run++) {
    samples.console.push(await firstFleetRenderMs(browser, `${big.hub.url}/`, bigCount));
    samples.consoleBaseline.push(await firstFleetRenderMs(browser, `${small.hub.url}/`, smallCount));
    samples.staticTable.push(await firstFleetRenderMs(browser, table.url, bigCount));
    say(
      `run ${run + 1}/${runs}: console ${bigCount} devices ${samples.console.at(-1)!.toFixed(0)} ms, ` +
        `${smallCount} devices ${samples.consoleBaseline.at(-1)!.toFixed(0)} ms, static table ${samples.staticTable.at(-1)!.toFixed(0)} ms`,
    );
  }
  const medians = {
    console: median(samples.console),
    consoleBaseline: median(samples.consoleBaseline),
    staticTable: median(samples.staticTable),
  };
  const result = {
    devices: bigCount,
    baselineDevices: smallCount,
    runs,
    loadavg: loadavg().map((x) => Number(x.toFixed(2))),
    budgetBytes: BUDGET_BYTES,
    weights,
    firstRenderMs: { medians, samples },
    ratios: {
      toBaselineFleet: medians.console / medians.consoleBaseline,
      toStaticTable: medians.console / medians.staticTable,
    },
    goals: {
      weightWithinBudget: weights.deviceMetricsTerminal.gzipBodyBytes <= BUDGET_BYTES && weights.fleet.gzipBodyBytes <= BUDGET_BYTES,
      firstRenderWithinGoal: medians.console <= FIRST_RENDER_GOAL_MS,
    },
  };
  if (values.json) console.log(JSON.stringify(result, null, 2));
  else {
    say(
      `first render, medians of ${runs}: console ${bigCount} devices ${medians.console.toFixed(0)} ms ` +
        `(${result.ratios.toBaselineFleet.toFixed(2)}× the ${smallCount}-device page's ${medians.consoleBaseline.toFixed(0)} ms, ` +
        `${result.ratios.toStaticTable.toFixed(2)}× a static table's ${medians.staticTable.toFixed(0)} ms); goal ${FIRST_RENDER_GOAL_MS} ms`,
    );
    say(`load average ${result.loadavg.join(' ')}; ${((Date.now() - started) / 1000).toFixed(0)} s in all`);
  }
}

main()
  .then(() => releases.releaseAll())
  .catch(async (err: unknown) => {
    console.error(err);
    await releases.releaseAll();
    process.exitCode = 1;
  });

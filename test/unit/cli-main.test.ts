/**
 * The program in-process, with captured output: exit codes for commander's
 * own errors, and input that must be refused before the hub is contacted.
 * (Talking to a real hub is test/integration/cli.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import type { CliIO } from '../../cli/context.js';
import { EXIT_HUB_ERROR, EXIT_INVALID_INPUT, EXIT_NOT_FOUND, EXIT_OK } from '../../cli/main.js';
import { runCliInProcess } from '../support/cli-in-process.js';

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
  requests: string[];
}

/** Runs `flotilla ARGS…`; `files` stand in for the file system; the hub answers with `respond`, or is never called. */
async function cli(
  args: string[],
  options: { files?: Record<string, string>; stdin?: string; respond?: (url: string, init: RequestInit) => Response } = {},
): Promise<Captured> {
  const requests: string[] = [];
  const fetch: CliIO['fetch'] = async (input, init) => {
    const url = String(input);
    requests.push(`${init?.method ?? 'GET'} ${new URL(url).pathname}`);
    if (!options.respond) throw new Error('the hub must not be contacted');
    return options.respond(url, init ?? {});
  };
  return { ...(await runCliInProcess(args, { fetch, files: options.files ?? {}, stdin: options.stdin ?? '' })), requests };
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

const VALID = `
name: web
scheduling: { selectors: {} }
spec:
  containers:
    - name: web
      image: nginx:1.27
      ports: ["8080:80"]
`;

describe('exit codes of commander itself', () => {
  it('--help and --version exit 0 and print to stdout', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(EXIT_OK);
    expect(help.stdout).toContain('Usage: flotilla');
    expect((await cli(['get', '--help'])).code).toBe(EXIT_OK);
    const version = await cli(['--version']);
    expect(version.code).toBe(EXIT_OK);
    expect(version.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });

  it('unknown commands and options, missing arguments and bad choices exit 2', async () => {
    for (const args of [
      ['bogus'],
      ['get'],
      ['get', 'widgets'],
      ['get', 'apps', '--nope'],
      ['describe', 'app'],
      ['-o', 'xml', 'get', 'apps'],
      ['apply'],
    ]) {
      const result = await cli(args);
      expect(result.code, args.join(' ')).toBe(EXIT_INVALID_INPUT);
      expect(result.requests).toEqual([]);
    }
    const bad = await cli(['server', '--http-port', '70000']);
    expect(bad.code).toBe(EXIT_INVALID_INPUT);
    expect(bad.stderr).toContain("option '--http-port <port>' argument '70000' is invalid");
  });

  it("refuses the agent's duration and size flags below their minimums, naming the minimum", async () => {
    for (const [args, message] of [
      [['--resync-interval', '50ms'], "'50ms' is invalid. must be at least 100ms."],
      [['--metrics-interval', '500ms'], "'500ms' is invalid. must be at least 1s."],
      [['--disk-reserve', 'lots'], 'invalid size "lots"'],
      [['--log-buffer', '1k'], "'1k' is invalid. must be at least 4k."],
      [['--log-rate', '0'], 'at least 1'],
      [['--outbox-max-size', '1k'], "'1k' is invalid. must be at least 64k."],
      [['--outbox-ttl', 'state=1h'], 'with CLASS one of events, logs, metrics'],
      [['--outbox-ttl', 'logs=0.1s'], 'must be at least 1s.'],
      [['--keepalive', '0.5s'], 'must be at least 1s.'],
    ] as const) {
      const result = await cli(['agent', ...args]);
      expect(result.code, args.join(' ')).toBe(EXIT_INVALID_INPUT);
      expect(result.stderr, args.join(' ')).toContain(message);
    }
  });
});

describe('apply', () => {
  it('refuses an invalid spec with every issue, naming the file, without contacting the hub', async () => {
    const spec = VALID.replace('"8080:80"', '"8080:80", "eighty"').replace('name: web\n', 'name: Web\n');
    const result = await cli(['apply', '-f', 'app.yaml'], { files: { 'app.yaml': spec } });
    expect(result.code).toBe(EXIT_INVALID_INPUT);
    expect(result.requests).toEqual([]);
    const lines = result.stderr.split('\n');
    expect(lines[0]).toBe('error: 2 problems in the specs: nothing was sent to the hub');
    expect(lines).toContain(`  app.yaml: name: must match pattern "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$" (e.g. "sensor-gateway")`);
    expect(lines.some((line) => line.startsWith('  app.yaml: spec.containers[0].ports[1]: must match pattern'))).toBe(true);
  });

  it('applies nothing when any document of a multi-document file is invalid', async () => {
    const text = `${VALID}---\nname: second\n---\n${VALID.replace('name: web\n', 'name: third\n')}`;
    const result = await cli(['apply', '-f', 'apps.yaml'], { files: { 'apps.yaml': text } });
    expect(result.code).toBe(EXIT_INVALID_INPUT);
    expect(result.requests).toEqual([]);
    expect(result.stderr).toBe(
      'error: 2 problems in the specs: nothing was sent to the hub\n  apps.yaml (document 2): scheduling: is required\n  apps.yaml (document 2): spec: is required\n',
    );
  });

  it('reports YAML syntax errors, missing files and empty input as exit 2', async () => {
    const syntax = await cli(['apply', '-f', '-'], { stdin: 'name: [\n' });
    expect(syntax.code).toBe(EXIT_INVALID_INPUT);
    expect(syntax.stderr).toMatch(/^error: <stdin>: not valid YAML or JSON\n {2}\S/);
    const missing = await cli(['apply', '-f', 'nope.yaml']);
    expect(missing).toMatchObject({ code: EXIT_INVALID_INPUT, stderr: 'error: nope.yaml: no such file\n' });
    const empty = await cli(['apply', '-f', '-'], { stdin: '# nothing\n---\n' });
    expect(empty).toMatchObject({ code: EXIT_INVALID_INPUT, stderr: 'error: <stdin>: no app spec found\n' });
  });

  it('posts every document as one set, as JSON, and prints kubectl-style lines', async () => {
    const bodies: unknown[] = [];
    const text = `${VALID}---\n${JSON.stringify({ name: 'api', scheduling: { devices: ['pi-1'] }, spec: { containers: [{ name: 'api', image: 'api:1' }] } })}\n`;
    const result = await cli(['apply', '-f', '-'], {
      stdin: text,
      respond: (_url, init) => {
        bodies.push(JSON.parse(String(init.body)));
        expect(new Headers(init.headers).get('content-type')).toBe('application/json');
        const app = { devices: { count: 0, ids: [] }, secrets: [], scope: null, previousScope: null };
        return json(200, {
          dryRun: false,
          source: null,
          items: [
            { ...app, name: 'web', action: 'created', revision: 1, previousRevision: null },
            { ...app, name: 'api', action: 'unchanged', revision: 7, previousRevision: 7 },
          ],
          pruned: [],
        });
      },
    });
    expect(result).toMatchObject({ code: EXIT_OK, stderr: '' });
    expect(result.stdout).toBe('app/web created (revision 1)\napp/api unchanged (revision 7)\n');
    expect(result.requests).toEqual(['POST /api/v1/apply']);
    expect((bodies[0] as { specs: { name: string }[] }).specs.map((spec) => spec.name)).toEqual(['web', 'api']);
  });
});

describe('hub errors', () => {
  it('prints the message and each issue, and maps 400 → 2, 404 → 3, 500 → 1', async () => {
    const invalid = await cli(['apply', '-f', '-'], {
      stdin: VALID,
      respond: () =>
        json(400, {
          error: {
            code: 'invalid_spec',
            message: 'invalid app spec',
            details: { issues: [{ path: 'spec.containers[0].env[0].fromSecret', message: 'secret "x" does not exist' }] },
          },
        }),
    });
    expect(invalid).toMatchObject({
      code: EXIT_INVALID_INPUT,
      stderr:
        'error: invalid app spec\n  spec.containers[0].env[0].fromSecret: secret "x" does not exist: set it first (flotilla secret set x …)\n',
    });

    const notFound = await cli(['describe', 'app', 'ghost'], {
      respond: () => json(404, { error: { code: 'not_found', message: 'app "ghost" not found' } }),
    });
    expect(notFound).toMatchObject({
      code: EXIT_NOT_FOUND,
      stderr: 'error: app "ghost" not found\n',
      requests: ['GET /api/v1/apps/ghost'],
    });

    const broken = await cli(['get', 'apps'], {
      respond: () => new Response('<html>oops</html>', { status: 502, statusText: 'Bad Gateway' }),
    });
    expect(broken).toMatchObject({ code: EXIT_HUB_ERROR, stderr: 'error: the hub answered 502 Bad Gateway: <html>oops</html>\n' });
  });

  it('says which hub could not be reached, and why', async () => {
    const result = await cli(['get', 'devices'], {
      respond: () => {
        throw new TypeError('fetch failed', {
          cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:7070'), { code: 'ECONNREFUSED' }),
        });
      },
    });
    expect(result).toMatchObject({
      code: EXIT_HUB_ERROR,
      stderr:
        'error: cannot reach the hub at http://127.0.0.1:7070: connect ECONNREFUSED 127.0.0.1:7070\n' +
        '  is `flotilla server` running there? Point the CLI at another hub with --hub URL or FLOTILLA_HUB.\n',
    });
  });

  it('refuses a hub URL that is not http(s) as invalid input', async () => {
    const result = await cli(['--hub', 'mqtt://127.0.0.1:1883', 'get', 'apps']);
    expect(result.code).toBe(EXIT_INVALID_INPUT);
    expect(result.stderr).toContain('invalid hub URL "mqtt://127.0.0.1:1883"');
  });
});

describe('label', () => {
  it('refuses bad labels without contacting the hub', async () => {
    const result = await cli(['label', 'device', 'pi-1', 'site=roof top']);
    expect(result.code).toBe(EXIT_INVALID_INPUT);
    expect(result.requests).toEqual([]);
    expect(result.stderr).toMatch(/^error: invalid label value "roof top" for key "site"/);
  });

  it('sends set and remove in one PATCH', async () => {
    let body: unknown;
    const device = { id: 'pi-1', labels: { site: 'roof' }, operatorLabels: { site: 'roof' }, reportedLabels: { arch: 'arm64' } };
    const result = await cli(['label', 'device', 'pi-1', 'site=roof', 'tier-', 'arch-'], {
      respond: (_url, init) => {
        body = JSON.parse(String(init.body));
        return json(200, { ...device, labels: { ...device.labels, arch: 'arm64' } });
      },
    });
    expect(body).toEqual({ set: { site: 'roof' }, remove: ['tier', 'arch'] });
    expect(result.requests).toEqual(['PATCH /api/v1/devices/pi-1/labels']);
    expect(result.stdout).toBe('device/pi-1 labeled\n');
    expect(result.stderr).toBe('note: label "arch" is still in effect (arch=arm64)\n');
  });
});

describe('rollback', () => {
  it('refuses a --to-revision that is not a revision number without contacting the hub', async () => {
    for (const value of ['0', '-1', 'two', '1.5', '']) {
      const result = await cli(['rollback', 'web', '--to-revision', value]);
      expect(result.code, value).toBe(EXIT_INVALID_INPUT);
      expect(result.requests).toEqual([]);
      expect(result.stderr).toContain('must be a revision number');
    }
  });

  it('posts the target revision, or an empty object for the previous one', async () => {
    const bodies: unknown[] = [];
    const respond = (_url: string, init: RequestInit) => {
      bodies.push(JSON.parse(String(init.body)));
      return json(200, { name: 'web', revision: 4, changed: true, rolledBackTo: 2 });
    };
    const previous = await cli(['rollback', 'web'], { respond });
    expect(previous).toMatchObject({ code: EXIT_OK, stdout: 'app/web rolled back to revision 2 (now revision 4)\n', stderr: '' });
    expect(previous.requests).toEqual(['POST /api/v1/apps/web/rollback']);
    await cli(['rollback', 'web', '--to-revision', '2'], { respond });
    expect(bodies).toEqual([{}, { toRevision: 2 }]);
  });
});

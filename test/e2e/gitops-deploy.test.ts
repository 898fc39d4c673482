/**
 * The GitOps recipe as CI runs it, end to end: examples/gitops/ committed to
 * a real git repository, its deploy.sh run with the environment a GitHub
 * Actions job gives it (hub URL, the job's key, the prune scope; the event
 * and branch), against a real hub that requires credentials and a registered
 * agent on the real Docker Engine. As docs/gitops.md sets it up, the
 * pull-request job holds a viewer key and the main-branch job an operator key.
 *
 * The folder is the example's, with two substitutions only: its images are the
 * loopback registry's (no public registry here) and the status page's host
 * port is a free loopback one. The story: main-branch mode deploys three apps;
 * a branch edits one and deletes another; pull-request mode prints the diff,
 * exits 0 and changes nothing; the viewer key is refused in main-branch mode;
 * `apply --dry-run` with it changes nothing on the hub or the device; after the merge, main-branch mode updates the edited app on the
 * device, removes the deleted one's containers, leaves the unchanged one's
 * container alone, and every new revision names the merged commit.
 */
import { execFile } from 'node:child_process';
import { chmodSync, cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual, promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { AppHistory, DeviceView, List } from '../../shared/index.js';
import { freePort } from '../support/ports.js';
import { type AgentProcess, CLI, REPO_ROOT, type RunResult, runProcess, scratchDir, stopAll } from '../support/processes.js';
import { waitFor } from '../support/wait.js';
import { docker, inspect, removeContainersAndVolumes } from './support/docker-cli.js';
import { describeDocker } from './support/engine.js';
import { ensureTestImages, type TestImages } from './support/images.js';
import { type RemoteHub, startRegisteredAgent, startRemoteHub } from './support/remote-fleet.js';

const run = promisify(execFile);
const suffix = Math.random().toString(36).slice(2, 8);
const deviceId = `gitops-${suffix}`;
const SCOPE = 'shop';
/** What a CI runner or a developer's shell may set that would steer deploy.sh or the CLI: each run sets its own. */
const STEERING = [
  'GITHUB_EVENT_NAME',
  'GITHUB_REF_NAME',
  'CI_MERGE_REQUEST_IID',
  'CI_COMMIT_BRANCH',
  'DEPLOY_MODE',
  'MAIN_BRANCH',
  'FLOTILLA_SPECS',
  'FLOTILLA_SOURCE',
  'FLOTILLA_CA',
  'FLOTILLA_HUB',
  'FLOTILLA_TOKEN',
  'FLOTILLA_PRUNE_SCOPE',
];

describeDocker('the GitOps recipe: deploy.sh in CI against a real hub and agent', () => {
  let remote: RemoteHub;
  let agent: AgentProcess;
  /** The pull-request job's key: it may diff and dry-run, never deploy. */
  let viewerKey: string;
  /** The main-branch job's key. */
  let operatorKey: string;
  let port: number;
  let images: TestImages;
  const repo = scratchDir('flotilla-gitops-repo-');
  const bin = scratchDir('flotilla-gitops-bin-');

  const git = async (...args: string[]) => {
    const env = {
      ...process.env,
      GIT_AUTHOR_NAME: 'CI',
      GIT_AUTHOR_EMAIL: 'ci@example.com',
      GIT_COMMITTER_NAME: 'CI',
      GIT_COMMITTER_EMAIL: 'ci@example.com',
    };
    return (await run('git', args, { cwd: repo, env })).stdout.trim();
  };

  /** `./deploy.sh` in the checkout, as a CI job runs it: `flotilla` on PATH, the job's variables (its key among them), nothing else steering it. */
  const deploy = (ci: Record<string, string>): Promise<RunResult> => {
    const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
    for (const name of STEERING) delete env[name];
    Object.assign(env, { FLOTILLA_HUB: remote.hub.url, FLOTILLA_PRUNE_SCOPE: SCOPE }, ci);
    return runProcess('./deploy.sh', [], { cwd: repo, env, timeoutMs: 60_000 });
  };
  /** What each job of the workflow in docs/gitops.md gives the script: its event, its branch, its key. */
  const mainJob = () => ({ GITHUB_EVENT_NAME: 'push', GITHUB_REF_NAME: 'main', FLOTILLA_TOKEN: operatorKey });
  const pullRequestJob = () => ({ GITHUB_EVENT_NAME: 'pull_request', GITHUB_REF_NAME: '7/merge', FLOTILLA_TOKEN: viewerKey });

  const json = async <T>(args: string[]): Promise<T> => {
    const out = await remote.cli([...args, '-o', 'json']);
    if (out.code !== 0) throw new Error(`flotilla ${args.join(' ')}: ${out.stderr}`);
    return JSON.parse(out.stdout) as T;
  };
  const revisions = async () =>
    Object.fromEntries((await json<List<{ name: string; revision: number }>>(['get', 'apps'])).items.map((a) => [a.name, a.revision]));
  const device = async () => (await json<List<DeviceView>>(['get', 'devices'])).items.find((d) => d.id === deviceId)!;
  /** The device's containers by app, as `docker ps` shows them: id and image. */
  const containers = async (): Promise<Record<string, { id: string; image: string }[]>> => {
    const out = await docker(
      'ps',
      '-a',
      '--no-trunc',
      '--filter',
      `label=flotilla.device=${deviceId}`,
      '--format',
      '{{.ID}} {{.Label "flotilla.app"}} {{.Image}}',
    );
    const byApp: Record<string, { id: string; image: string }[]> = {};
    for (const line of out === '' ? [] : out.split('\n')) {
      const [id, app, image] = line.split(' ') as [string, string, string];
      byApp[app] = [...(byApp[app] ?? []), { id, image }];
    }
    return byApp;
  };
  /** The device's containers by app once it reports exactly `expected` (app → revision) running, one container each; else false. */
  const converged = async (expected: Record<string, number>) => {
    const [view, byApp] = [await device(), await containers()];
    const running = view.apps.filter((a) => a.phase === 'running').map((a) => [a.name, a.revision] as const);
    const settled =
      isDeepStrictEqual(sortKeys(Object.fromEntries(running)), sortKeys(expected)) &&
      isDeepStrictEqual(Object.keys(byApp).sort(), Object.keys(expected).sort()) &&
      Object.values(byApp).every((list) => list.length === 1);
    return settled && byApp;
  };
  const page = async () => (await fetch(`http://127.0.0.1:${port}/`)).text();

  let firstCommit: string;
  let deployed: Record<string, { id: string; image: string }[]>;

  beforeAll(async () => {
    images = await ensureTestImages();
    port = await freePort();
    remote = await startRemoteHub();
    agent = await startRegisteredAgent(remote, deviceId, {
      labels: { site: 'lab' },
      extraArgs: ['--container-name-prefix', `${deviceId}.`],
    });
    viewerKey = await remote.account('ci-shop-diff', 'viewer');
    operatorKey = await remote.account('ci-shop', 'operator');

    // `flotilla` on PATH, as `npm install -g` leaves it.
    writeFileSync(join(bin, 'flotilla'), `#!/bin/sh\nexec '${process.execPath}' '${CLI}' "$@"\n`);
    chmodSync(join(bin, 'flotilla'), 0o755);

    cpSync(join(REPO_ROOT, 'examples/gitops'), repo, { recursive: true });
    substitute('apps/web.yaml', 'image: busybox:1.36', `image: ${images.v1}`, 1);
    substitute('apps/web.yaml', '"8089:80"', `"127.0.0.1:${port}:80"`, 1);
    substitute('apps/monitoring/telemetry.yaml', 'image: busybox:1.36', `image: ${images.v1}`, 2);
    await git('init', '-q', '-b', 'main');
    await git('add', '.');
    await git('commit', '-q', '-m', 'The shop fleet');
    firstCommit = await git('rev-parse', 'HEAD');
  });

  afterAll(async () => {
    await stopAll();
    await removeContainersAndVolumes(`flotilla.device=${deviceId}`);
  });

  /** Replaces `from` in a file of the checkout, exactly `times` times: an example that changed shape fails here, not later. */
  function substitute(file: string, from: string, to: string, times: number): void {
    const path = join(repo, file);
    const text = readFileSync(path, 'utf8');
    expect(text.split(from).length - 1, `${from} in ${file}`).toBe(times);
    writeFileSync(path, text.replaceAll(from, to));
  }

  it('main-branch mode deploys the folder: the agent runs every app, each revision naming the commit', async () => {
    const applied = await deploy(mainJob());
    expect(applied.stderr).not.toMatch(/error/i);
    expect(applied.code).toBe(0);
    expect(applied.stdout).toContain('deploy: main: apply');
    expect(applied.stdout).toMatch(/^app\/disk-watch created \(revision 1\)$/m);
    expect(applied.stdout).toMatch(/^app\/loadavg created \(revision 1\)$/m);
    expect(applied.stdout).toMatch(/^app\/web created \(revision 1\)$/m);
    expect(applied.stdout).toContain(`deploy: applied apps at ${firstCommit} (scope ${SCOPE})`);

    deployed = await waitFor('the device to run the three apps', () => converged({ 'disk-watch': 1, loadavg: 1, web: 1 }), {
      timeoutMs: 60_000,
    });
    expect(await page()).toMatch(/^Hello from git from /);
    const history = await json<AppHistory>(['rollout', 'history', 'web']);
    expect(history.items.map((r) => [r.revision, r.source])).toEqual([[1, `git:${firstCommit}`]]);
  });

  let change: string;

  it('pull-request mode with the viewer key, on a branch that edits one app and deletes another, prints the diff, exits 0 and changes nothing', async () => {
    await git('checkout', '-q', '-b', 'greeting');
    substitute('apps/web.yaml', 'value: Hello from git }', 'value: Hello again from git }', 1);
    // The second document of the file goes: disk-watch is no longer in the folder.
    const telemetry = join(repo, 'apps/monitoring/telemetry.yaml');
    const [first, second] = readFileSync(telemetry, 'utf8').split('\n---\n');
    expect(second).toContain('name: disk-watch');
    writeFileSync(telemetry, `${first}\n`);
    await git('commit', '-q', '-am', 'A new greeting; no more disk-watch');
    change = await git('rev-parse', 'HEAD');
    const before = { revisions: await revisions(), desired: (await device()).desiredRevision };

    const diff = await deploy(pullRequestJob());
    expect(diff.stderr).toBe('');
    expect(diff.code).toBe(0);
    expect(diff.stdout).toContain('deploy: (pull request): diff');
    expect(diff.stdout).toMatch(/^app\/web changed \(revision 1 → 2\)$/m);
    expect(diff.stdout).toMatch(/^-.*Hello from git$/m);
    expect(diff.stdout).toMatch(/^\+.*Hello again from git$/m);
    expect(diff.stdout).toMatch(/^app\/loadavg unchanged$/m);
    expect(diff.stdout).toMatch(/^app\/disk-watch deleted$/m);
    expect(diff.stdout).toContain('deploy: the changes above are applied when this reaches main');

    expect(await revisions()).toEqual(before.revisions);
    expect((await device()).desiredRevision).toBe(before.desired);
    expect(await containers()).toEqual(deployed);
  });

  it('pull-request mode fails only on errors: an invalid spec, a refused key, no key, no scope', async () => {
    const before = await revisions();
    await git('checkout', '-q', '-b', 'typo');
    substitute('apps/web.yaml', `image: ${images.v1}`, 'image: 5', 1);
    await git('commit', '-q', '-am', 'A typo');
    const invalid = await deploy(pullRequestJob());
    expect(invalid.code).toBeGreaterThanOrEqual(2);
    expect(invalid.stderr).toContain('apps/web.yaml: spec.containers[0].image: must be string');
    expect(invalid.stderr).toContain(`deploy: flotilla diff failed (exit ${invalid.code})`);

    await git('checkout', '-q', 'greeting');
    const refused = await deploy({ ...pullRequestJob(), FLOTILLA_TOKEN: 'not-a-key' });
    expect(refused.code).toBe(4);
    expect(refused.stdout).not.toMatch(/^app\//m);
    expect(refused.stderr).toContain(
      'deploy: flotilla diff failed (exit 4): the hub refused FLOTILLA_TOKEN; diff needs a valid key of any role',
    );
    const keyless = await deploy({ ...pullRequestJob(), FLOTILLA_TOKEN: '' });
    expect(keyless.code).toBe(2);
    expect(keyless.stderr).toMatch(/^deploy: FLOTILLA_TOKEN is not set: diff needs a viewer key/m);
    const unscoped = await deploy({ ...pullRequestJob(), FLOTILLA_PRUNE_SCOPE: '' });
    expect(unscoped.code).toBe(2);
    expect(unscoped.stderr).toMatch(/^deploy: FLOTILLA_PRUNE_SCOPE is not set/);
    expect(await revisions()).toEqual(before);
  });

  it("main-branch mode with the pull request's viewer key is refused with exit 4, naming the operator role, and deploys nothing", async () => {
    const before = { revisions: await revisions(), desired: (await device()).desiredRevision };
    // The branch's checkout, as if its job claimed to run on main: the key is what stops it.
    const refused = await deploy({ ...mainJob(), FLOTILLA_TOKEN: viewerKey });
    expect(refused.code).toBe(4);
    expect(refused.stdout).toContain('deploy: main: apply');
    expect(refused.stdout).not.toMatch(/^app\//m);
    expect(refused.stderr).toMatch(
      /^error: the hub refused the request: method "apps\.applyAll" needs role operator; ci-shop-diff is viewer/m,
    );
    expect(refused.stderr).toContain(
      'deploy: flotilla apply failed (exit 4): the hub refused FLOTILLA_TOKEN; apply needs an operator key (flotilla serviceaccount create ci-shop --role operator); a viewer key only diffs',
    );
    expect(await revisions()).toEqual(before.revisions);
    expect((await device()).desiredRevision).toBe(before.desired);
    expect(await containers()).toEqual(deployed);
  });

  it('apply --dry-run of the branch with the viewer key stores nothing: same revisions over the API, the agent keeps the old containers', async () => {
    const before = { revisions: await revisions(), desired: (await device()).desiredRevision };
    const dry = await remote.cli(['apply', '-f', join(repo, 'apps'), '--dry-run', '--prune', '--prune-scope', SCOPE], { token: viewerKey });
    expect(dry.stderr).toBe('');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^app\/web configured \(revision 2\) \(dry run\)$/m);
    expect(dry.stdout).toMatch(/^app\/disk-watch pruned \(dry run\)$/m);
    expect(await revisions()).toEqual(before.revisions);
    expect((await device()).desiredRevision).toBe(before.desired);

    // A barrier the device must pass: an app made by hand (no scope) reaches it in a desired
    // state the hub computes after the dry run. Once the agent runs it and has observed that
    // state, anything the dry run had stored would be on the device too.
    const byHand = join(scratchDir('flotilla-gitops-hand-'), 'by-hand.yaml');
    writeFileSync(
      byHand,
      `name: by-hand\nscheduling: { devices: [${deviceId}] }\nspec:\n  containers:\n    - { name: web, image: ${images.v1} }\n`,
    );
    expect((await remote.cli(['apply', '-f', byHand])).code).toBe(0);
    const after = await waitFor(
      'the device to run the app made by hand',
      async () => {
        const view = await device();
        return view.observedRevision === view.desiredRevision && (await converged({ 'by-hand': 1, 'disk-watch': 1, loadavg: 1, web: 1 }));
      },
      { timeoutMs: 60_000 },
    );
    const { 'by-hand': _made, ...theFolders } = after;
    expect(theFolders).toEqual(deployed);
    expect(await revisions()).toEqual({ ...before.revisions, 'by-hand': 1 });
  });

  it('main-branch mode after the merge updates the edited app, removes the deleted one, and names the merged commit', async () => {
    await git('checkout', '-q', 'main');
    await git('merge', '-q', '--ff-only', 'greeting');
    expect(await git('rev-parse', 'HEAD')).toBe(change);

    const applied = await deploy(mainJob());
    expect(applied.stderr).not.toMatch(/error/i);
    expect(applied.code).toBe(0);
    expect(applied.stdout).toMatch(/^app\/web configured \(revision 2\)$/m);
    expect(applied.stdout).toMatch(/^app\/loadavg unchanged \(revision 1\)$/m);
    expect(applied.stdout).toMatch(/^app\/disk-watch pruned$/m);
    expect(applied.stdout).not.toContain('by-hand');

    const now = await waitFor(
      'the device to run revision 2 of web, without disk-watch',
      () => converged({ 'by-hand': 1, loadavg: 1, web: 2 }),
      {
        timeoutMs: 60_000,
      },
    );
    expect(await page()).toMatch(/^Hello again from git from /);
    const web = await inspect(now.web![0]!.id);
    expect(web.Config.Env).toContain('GREETING=Hello again from git');
    expect(web.Config.Labels['flotilla.app-revision']).toBe('2');
    expect(now.web![0]!.id).not.toBe(deployed.web![0]!.id);
    // An unchanged app has no new revision, so its container is never touched.
    expect(now.loadavg).toEqual(deployed.loadavg);
    expect(now['disk-watch']).toBeUndefined();
    // The app made by hand has no scope: the prune leaves it.
    expect(await revisions()).toEqual({ 'by-hand': 1, loadavg: 1, web: 2 });

    const history = await remote.cli(['rollout', 'history', 'web']);
    expect(history.code).toBe(0);
    const rows = history.stdout.trim().split('\n').slice(1);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatch(new RegExp(`^2\\*\\s.*git:${change}`));
    expect(rows[1]).toMatch(new RegExp(`^1\\s.*git:${firstCommit}`));
    expect(agent.proc.running).toBe(true);
  });
});

function sortKeys<T>(record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => a.localeCompare(b)));
}

/**
 * `-w` of `flotilla rollout status` and of `flotilla agent upgrade` with a rollout: the
 * rollout printed again on every change until it ends, and how it ended.
 *
 * Invariants:
 * - A watch follows one revision, the one it first sees (or the one the caller set).
 *   A newer revision of the app or agent target meanwhile ends it with exit 1 naming
 *   that revision, whether it came with a rollout of its own or without one (the hub
 *   then drops the rollout, and its "has no rollout" would mislead).
 * - complete and aborted end it: the last status is returned, and the caller says what
 *   that means for its exit code.
 * - A pause of the failure threshold ends it with exit 1, the hub's reason and the
 *   commands that go on from there: nothing moves until the operator acts. It is told
 *   from the other pauses by the devices it sent back (`reverted`, which only the
 *   threshold sets while the rollout runs): more of them than the watch saw while the
 *   rollout progressed, or any at all when the watch began on a paused rollout. A pause
 *   the operator asked for, or after the canary, is watched on: a resume goes on.
 */
import type { RolloutStatus } from '../../shared/index.js';
import { type HubClient, HubError } from '../client.js';
import { type CliIO, render } from '../context.js';
import { CliError, EXIT_FAILED, EXIT_NOT_FOUND } from '../errors.js';
import type { OutputFormat } from '../output.js';
import { type RolloutTarget, rolloutCall, rolloutText } from './rollout.js';

/** How often a watch asks the hub. */
const WATCH_INTERVAL_MS = 1000;

/**
 * Prints the rollout again on every change until it is complete or aborted, and returns
 * that last status; throws a CliError (exit 1) when it pauses on failures or the target
 * gets a newer revision. `-o json` gives one JSON line per change (a stream a program can
 * read line by line); table and YAML print the whole view again.
 */
export async function watchRollout(
  io: CliIO,
  format: OutputFormat,
  client: HubClient,
  target: RolloutTarget,
  revision?: number,
): Promise<RolloutStatus> {
  let watched = revision;
  let last = '';
  let revertedWhileProgressing = 0;
  for (;;) {
    let now: RolloutStatus;
    try {
      now = await rolloutCall(client, 'status', target);
    } catch (err) {
      if (watched !== undefined && err instanceof HubError && err.status === 404) throw await goneOrSuperseded(client, target, watched);
      throw err;
    }
    watched ??= now.revision;
    if (now.revision > watched) throw superseded(target, watched, now.revision, true);
    const text = JSON.stringify(now);
    if (text !== last) {
      last = text;
      if (format === 'json') io.stdout(`${text}\n`);
      else render(io, format, now, () => `${rolloutText(now)}\n`);
    }
    if (now.phase === 'complete' || now.phase === 'aborted') return now;
    if (pausedOnFailures(now, revertedWhileProgressing)) throw failurePause(target, now);
    if (now.phase === 'progressing') revertedWhileProgressing = now.counts.reverted;
    await new Promise((resolve) => setTimeout(resolve, WATCH_INTERVAL_MS));
  }
}

/** Whether `status` is a pause of the failure threshold: devices were sent back since the rollout last progressed. */
export function pausedOnFailures(status: Pick<RolloutStatus, 'phase' | 'counts'>, revertedWhileProgressing: number): boolean {
  return status.phase === 'paused' && status.counts.reverted > revertedWhileProgressing;
}

/** `agent/site-lab`, `app/web`. */
export function subjectOf(target: RolloutTarget): string {
  return `${target.kind}/${target.name}`;
}

/** `see why: flotilla events gw-1`, or with DEVICE standing for each of several. */
export function eventsHint(ids: readonly string[]): string {
  if (ids.length === 1) return `see why: flotilla events ${ids[0]}`;
  const shown = ids.slice(0, 5).join(', ');
  return `see why: flotilla events DEVICE, for each of ${shown}${ids.length > 5 ? ` and ${ids.length - 5} more` : ''}`;
}

function failurePause(target: RolloutTarget, status: RolloutStatus): CliError {
  const subject = subjectOf(target);
  const sentBack = status.devices.filter((d) => d.state === 'reverted').map((d) => d.id);
  return new CliError(`${subject} revision ${status.revision} paused: ${status.reason ?? 'devices failed'}`, EXIT_FAILED, [
    eventsHint(sentBack),
    `go on with the next devices: flotilla rollout resume ${subject}`,
    `or send every device back: flotilla rollout abort ${subject}`,
  ]);
}

function superseded(target: RolloutTarget, watched: number, newer: number, withRollout: boolean): CliError {
  const subject = subjectOf(target);
  const how = withRollout
    ? `follow its rollout: flotilla rollout status ${subject} -w`
    : target.kind === 'agent'
      ? `it was set without a rollout, so its devices upgrade at once: flotilla agent targets ${target.name}`
      : `it was applied without a rollout, so its devices update at once: flotilla get apps ${target.name}`;
  return new CliError(`${subject} has a newer revision ${newer} than the revision ${watched} this watched`, EXIT_FAILED, [how]);
}

/** The rollout vanished mid-watch: the app or target is gone, or has a newer revision set without a rollout. */
async function goneOrSuperseded(client: HubClient, target: RolloutTarget, watched: number): Promise<CliError> {
  const revision = await currentRevision(client, target);
  if (revision === undefined) return new CliError(`${subjectOf(target)} was deleted while its rollout was watched`, EXIT_NOT_FOUND);
  return superseded(target, watched, revision, false);
}

async function currentRevision(client: HubClient, target: RolloutTarget): Promise<number | undefined> {
  if (target.kind === 'agent') {
    return (await client.call('agent.targets', {})).items.find((item) => item.name === target.name)?.revision;
  }
  try {
    return (await client.call('apps.get', { name: target.name })).revision;
  } catch (err) {
    if (err instanceof HubError && err.status === 404) return undefined;
    throw err;
  }
}

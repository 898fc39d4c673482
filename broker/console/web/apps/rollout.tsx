/**
 * An app's Rollout tab: the newest rollout's phase and reason, a progress bar
 * per stage (Canary, Rest: healthy of all), every device's place in it, and
 * for operators the controls that apply to the phase. Polled every second:
 * a rollout moves device by device and the operator is watching it.
 */
import { useState } from 'preact/hooks';
import type { RolloutDeviceView, RolloutStatus } from '../../../../shared/api/results.js';
import { ApiCallError, type ConsoleApi } from '../api.js';
import { DataTable, ErrorNote, PhaseBadge } from '../components.js';
import { ConfirmButton } from '../confirm.js';
import { formatAgo, formatTime } from '../format.js';
import { useInterval, useLoad } from '../hooks.js';
import { href } from '../router.js';
import { useSession } from '../session.js';
import { Polled } from './polled.js';
import { rolloutActions, rolloutStages, type StageProgress } from './rollout-stages.js';

const POLL_MS = 1000;

/**
 * The hub keeps a rollout only while the current spec asks for one
 * (`spec.rollout`) and has a revision to roll from, so the app is read first
 * and the rollout asked for only then: an app without one is the usual case,
 * not an error to log.
 */
async function loadRollout(api: ConsoleApi, name: string): Promise<RolloutStatus | null> {
  const app = await api.call('apps.get', { name });
  if (!app.spec.spec.rollout || app.revision <= 1) return null;
  try {
    return await api.call('rollouts.status', { name });
  } catch (err) {
    if (err instanceof ApiCallError && err.code === 'not_found') return null;
    throw err;
  }
}

export function AppRollout({ name }: { name: string }) {
  const { api } = useSession();
  const [status, reload] = useLoad(() => loadRollout(api, name), [api, name]);
  useInterval(reload, POLL_MS);
  if (status.state === 'loading') return <p class="loading rollout-reserve">Loading…</p>;
  return (
    <Polled loaded={status}>
      {(value) => (value === null ? <NoRollout name={name} /> : <Rollout status={value} onChanged={reload} />)}
    </Polled>
  );
}

function NoRollout({ name }: { name: string }) {
  return (
    <p class="notice">
      No rollout: each revision of {name} went to every device at once. A spec with <code>spec.rollout</code> (canary, batches, pauses)
      rolls its next revision out in stages. <a href={href(['apps', name])}>Where it runs</a>
    </p>
  );
}

function Rollout({ status, onChanged }: { status: RolloutStatus; onChanged: () => void }) {
  const { can } = useSession();
  const stages = rolloutStages(status.devices);
  return (
    <>
      <div class="card rollout-head">
        <p>
          Revision {status.revision} (from {status.previousRevision}): <PhaseBadge phase={status.phase} />
          {status.reason && <span class="rollout-reason"> {status.reason}</span>}
        </p>
        <p class="help">
          Started {formatAgo(status.startedAt)}, last change {formatAgo(status.updatedAt)}.
        </p>
        <StageBar label="Canary" progress={stages.canary} />
        <StageBar label="Rest" progress={stages.rest} />
        {can('operator') && <RolloutControls status={status} onChanged={onChanged} />}
      </div>
      <h2>Devices</h2>
      <RolloutDevices devices={status.devices} />
    </>
  );
}

function StageBar({ label, progress }: { label: string; progress: StageProgress }) {
  return (
    <div class="stage">
      <span class="stage-name" aria-hidden="true">
        {label}
      </span>
      {/* max 0 would read as an indeterminate bar: an empty stage is shown full, its text says 0 of 0. */}
      <progress aria-label={label} value={progress.healthy} max={Math.max(progress.total, 1)} />
      <span class="stage-count">
        {progress.healthy} of {progress.total} healthy
        {progress.failed > 0 && <span class="error"> · {progress.failed} failed</span>}
      </span>
    </div>
  );
}

function RolloutControls({ status, onChanged }: { status: RolloutStatus; onChanged: () => void }) {
  const { api } = useSession();
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const name = status.app;
  const actions = rolloutActions(status.phase, status.previousRevision);
  const run = async (action: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await action();
      onChanged();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <div class="toolbar rollout-controls">
        {actions.includes('pause') && (
          <button type="button" class="secondary" disabled={busy} onClick={() => void run(() => api.call('rollouts.pause', { name }))}>
            Pause
          </button>
        )}
        {actions.includes('resume') && (
          <button type="button" disabled={busy} onClick={() => void run(() => api.call('rollouts.resume', { name }))}>
            Resume
          </button>
        )}
        {actions.includes('abort') && (
          <ConfirmButton
            disabled={busy}
            confirm={{
              title: `Abort the rollout of ${name} revision ${status.revision}?`,
              message: `Every device goes back to the revision it ran before the rollout. Revision ${status.revision} stays the app's current one.`,
              confirmLabel: 'Abort',
              danger: true,
            }}
            onConfirm={() => run(() => api.call('rollouts.abort', { name }))}
          >
            Abort
          </ConfirmButton>
        )}
        {actions.includes('rollback') && (
          <ConfirmButton
            class="secondary"
            disabled={busy}
            confirm={{
              title: `Roll back ${name} to revision ${status.previousRevision}?`,
              message: `Revision ${status.previousRevision}'s spec becomes a new revision, which rolls out like any apply.`,
              confirmLabel: 'Roll back',
            }}
            onConfirm={() =>
              run(async () => {
                const result = await api.call('apps.rollback', { name, toRevision: status.previousRevision });
                setNotice(
                  result.changed
                    ? `Revision ${result.revision} made from revision ${result.rolledBackTo}.`
                    : `Nothing changed (changed: false): revision ${result.rolledBackTo}'s spec is already current.`,
                );
              })
            }
          >
            Roll back
          </ConfirmButton>
        )}
      </div>
      {notice && (
        <p class="notice" role="status">
          {notice}
        </p>
      )}
      {error !== null && <ErrorNote error={error} />}
    </>
  );
}

const DEVICE_COLUMNS = [
  { label: 'Device' },
  { label: 'Stage' },
  { label: 'State' },
  { label: 'Revision', class: 'num hide-narrow' },
  { label: 'Since' },
  { label: 'Message' },
];

function RolloutDevices({ devices }: { devices: RolloutDeviceView[] }) {
  return (
    <DataTable
      label="Rollout devices"
      columns={DEVICE_COLUMNS}
      items={devices}
      empty={<p class="notice">No device is scheduled for this app.</p>}
    >
      {(device) => (
        <tr key={device.id} data-device={device.id}>
          <td>
            <a href={href(['devices', device.id])}>{device.id}</a>
          </td>
          <td>{device.canary ? 'canary' : 'rest'}</td>
          <td>
            <PhaseBadge phase={device.state} />
          </td>
          <td class="num hide-narrow">{device.revision}</td>
          <td title={formatTime(device.since)}>{formatAgo(device.since)}</td>
          <td class="wrap">{device.message ?? ''}</td>
        </tr>
      )}
    </DataTable>
  );
}

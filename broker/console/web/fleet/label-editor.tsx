/**
 * The bulk label edit: `Set labels` and `Remove labels` for the selected
 * devices, checked before anything is sent, then `devices.label` for each
 * device a few at a time, with progress and each device's error shown. The
 * stream brings the new labels into the table, so nothing is reloaded here.
 */
import { useState } from 'preact/hooks';
import { ApiCallError } from '../api.js';
import { TextField } from '../components.js';
import { parseLabelEdit } from '../label-edit.js';
import { href } from '../router.js';
import { useSession } from '../session.js';
import { type EachProgress, runEach } from './run-each.js';

/** Requests in flight at once. */
const CONCURRENCY = 4;

export function LabelEditor(props: { devices: readonly string[]; onClose(): void; onDone(failed: string[]): void }) {
  const { api } = useSession();
  const [setText, setSetText] = useState('');
  const [removeText, setRemoveText] = useState('');
  const [errors, setErrors] = useState<{ setError?: string; removeError?: string }>({});
  const [progress, setProgress] = useState<EachProgress<string> | undefined>();
  const [running, setRunning] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    const parsed = parseLabelEdit(setText, removeText);
    if (!parsed.ok) {
      setErrors(parsed);
      return;
    }
    setErrors({});
    setRunning(true);
    const { set, remove } = parsed.edit;
    const devices = [...props.devices];
    const result = await runEach(
      devices,
      CONCURRENCY,
      (id) =>
        api.call('devices.label', {
          id,
          ...(Object.keys(set).length > 0 ? { set } : {}),
          ...(remove.length > 0 ? { remove } : {}),
        }),
      setProgress,
    );
    setProgress(result);
    setRunning(false);
    props.onDone(result.failures.map((failure) => failure.item));
  };

  const count = props.devices.length;
  return (
    <form class="card label-editor" onSubmit={submit} aria-label="Edit labels">
      <h2>Edit labels</h2>
      <p class="help">
        For the {count} selected device{count === 1 ? '' : 's'} shown.
      </p>
      <div class="label-fields">
        <TextField label="Set labels" help="key=value, key2=value2" error={errors.setError} value={setText} onValue={setSetText} />
        <TextField label="Remove labels" help="key, key2" error={errors.removeError} value={removeText} onValue={setRemoveText} />
      </div>
      <div class="toolbar">
        <button type="submit" disabled={running || count === 0}>
          Apply labels
        </button>
        <button type="button" class="secondary" onClick={props.onClose} disabled={running}>
          {progress && !running ? 'Close' : 'Cancel'}
        </button>
      </div>
      <Progress progress={progress} running={running} />
    </form>
  );
}

function Progress({ progress, running }: { progress: EachProgress<string> | undefined; running: boolean }) {
  // The status line is always there, so the form does not grow when the edit starts.
  const failed = progress?.failures.length ?? 0;
  return (
    <>
      <p class="label-progress" role="status">
        {progress && <progress value={progress.done} max={progress.total} aria-label="Labelled" />}{' '}
        {progress
          ? `${progress.done - failed} of ${progress.total} labelled${failed ? `, ${failed} failed` : ''}${running ? '…' : '.'}`
          : ''}
      </p>
      {failed > 0 && !running && (
        <ul class="error label-failures" role="alert">
          {progress?.failures.map(({ item, error }) => (
            <li key={item}>
              <a href={href(['devices', item])}>{item}</a>: {describeError(error)}
            </li>
          ))}
        </ul>
      )}
      {failed > 0 && !running && <p class="help">The devices that failed stay selected: Apply labels again to retry them.</p>}
    </>
  );
}

function describeError(error: unknown): string {
  if (error instanceof ApiCallError && error.status === 403) return `not allowed: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}

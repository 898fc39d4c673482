/**
 * A device's labels, and for operators the form that changes them in place
 * (`devices.label`): operator labels override what the agent reports, and
 * removing a reported label leaves a tombstone the hub keeps.
 */
import { useState } from 'preact/hooks';
import type { DeviceView } from '../../../../shared/api/results.js';
import { ErrorNote } from '../components.js';
import { parseLabelEdit } from '../label-edit.js';
import { useSession } from '../session.js';

export function LabelEditor(props: { device: DeviceView; editable: boolean; onChanged: () => void }) {
  const { api } = useSession();
  const [setText, setSetText] = useState('');
  const [removeText, setRemoveText] = useState('');
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const labels = Object.entries(props.device.labels);
  // Nothing typed is no error: the form just has nothing to send yet.
  const blank = setText.trim() === '' && removeText.trim() === '';
  const parsed = parseLabelEdit(setText, removeText);
  const setProblem = blank || parsed.ok ? undefined : parsed.setError;
  const removeProblem = blank || parsed.ok ? undefined : parsed.removeError;

  const change = async (set: Record<string, string>, remove: string[]) => {
    setBusy(true);
    try {
      await api.call('devices.label', {
        id: props.device.id,
        ...(Object.keys(set).length > 0 ? { set } : {}),
        ...(remove.length > 0 ? { remove } : {}),
      });
      setError(undefined);
      setSetText('');
      setRemoveText('');
      props.onChanged();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      {labels.length === 0 ? (
        <p class="help">No labels.</p>
      ) : (
        <ul class="labels">
          {labels.map(([key, value]) => (
            <li key={key}>
              <span class="label" title={key in props.device.operatorLabels ? 'set by an operator' : 'reported by the agent'}>
                {key}={value}
              </span>
              {props.editable && (
                <button type="button" class="link" aria-label={`Remove label ${key}`} disabled={busy} onClick={() => change({}, [key])}>
                  remove
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      {props.editable && (
        <form
          class="label-form"
          onSubmit={(e) => {
            e.preventDefault();
            if (parsed.ok) void change(parsed.edit.set, parsed.edit.remove);
          }}
        >
          <div class={`field${setProblem ? ' invalid' : ''}`}>
            <label for="device-label-set">Set labels</label>
            <input
              id="device-label-set"
              placeholder="site=roof, tier=edge"
              value={setText}
              aria-invalid={setProblem !== undefined}
              aria-describedby="device-label-set-note"
              onInput={(e) => setSetText((e.target as HTMLInputElement).value)}
            />
            <small id="device-label-set-note" class={setProblem ? 'error' : 'help'}>
              {setProblem ?? 'key=value, comma-separated'}
            </small>
          </div>
          <div class={`field${removeProblem ? ' invalid' : ''}`}>
            <label for="device-label-remove">Remove labels</label>
            <input
              id="device-label-remove"
              placeholder="site, tier"
              value={removeText}
              aria-invalid={removeProblem !== undefined}
              aria-describedby={removeProblem ? 'device-label-remove-error' : undefined}
              onInput={(e) => setRemoveText((e.target as HTMLInputElement).value)}
            />
            {removeProblem && (
              <small id="device-label-remove-error" class="error">
                {removeProblem}
              </small>
            )}
          </div>
          <button type="submit" disabled={busy || !parsed.ok}>
            Save labels
          </button>
        </form>
      )}
      {error !== undefined && <ErrorNote error={error} />}
    </>
  );
}

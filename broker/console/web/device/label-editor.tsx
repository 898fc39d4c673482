/**
 * A device's labels, and for operators the form that changes them in place
 * (`devices.label`): operator labels override what the agent reports, and
 * removing a reported label leaves a tombstone the hub keeps.
 */
import { useState } from 'preact/hooks';
import type { DeviceView } from '../../../../shared/api/results.js';
import { ErrorNote } from '../components.js';
import { useSession } from '../session.js';
import { parseLabelKeys, parseLabelSet } from './labels.js';

export function LabelEditor(props: { device: DeviceView; editable: boolean; onChanged: () => void }) {
  const { api } = useSession();
  const [setText, setSetText] = useState('');
  const [removeText, setRemoveText] = useState('');
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const labels = Object.entries(props.device.labels);
  const parsedSet = parseLabelSet(setText);

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
            if (parsedSet.ok) void change(parsedSet.value, parseLabelKeys(removeText));
          }}
        >
          <div class={`field${parsedSet.ok ? '' : ' invalid'}`}>
            <label for="device-label-set">Set labels</label>
            <input
              id="device-label-set"
              placeholder="site=roof, tier=edge"
              value={setText}
              aria-invalid={!parsedSet.ok}
              aria-describedby="device-label-set-note"
              onInput={(e) => setSetText((e.target as HTMLInputElement).value)}
            />
            <small id="device-label-set-note" class={parsedSet.ok ? 'help' : 'error'}>
              {parsedSet.ok ? 'key=value, comma-separated' : parsedSet.error}
            </small>
          </div>
          <div class="field">
            <label for="device-label-remove">Remove labels</label>
            <input
              id="device-label-remove"
              placeholder="site, tier"
              value={removeText}
              onInput={(e) => setRemoveText((e.target as HTMLInputElement).value)}
            />
          </div>
          <button type="submit" disabled={busy || !parsedSet.ok || (setText.trim() === '' && removeText.trim() === '')}>
            Save labels
          </button>
        </form>
      )}
      {error !== undefined && <ErrorNote error={error} />}
    </>
  );
}

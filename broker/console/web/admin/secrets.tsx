/**
 * Secrets: names and when each was last set, never a value (the hub never
 * returns one). An operator sets and deletes them; the value typed here is
 * sent once and cleared from the form. Replacing an existing secret asks
 * first, since the apps using it get the new value on their devices; the hub
 * refuses to delete one an app still uses, and says which.
 */
import { useState } from 'preact/hooks';
import type { SecretInfo } from '../../../../shared/api/results.js';
import { Await, ErrorNote, Field } from '../components.js';
import { ConfirmButton, useConfirm } from '../confirm.js';
import { formatAgo, formatTime } from '../format.js';
import { useLoad } from '../hooks.js';
import { useSession } from '../session.js';
import { hubIssueAt, shownAtFields } from './hub-issues.js';
import { checkName, checkSecretValue } from './validate.js';

export function SecretsTab() {
  const { api, can } = useSession();
  const [loaded, reload] = useLoad(() => api.call('secrets.list', {}), [api]);
  const known = loaded.state === 'ready' ? loaded.value.items.map((secret) => secret.name) : [];
  return (
    <>
      {can('operator') ? (
        <SetSecretForm known={known} onSet={reload} />
      ) : (
        <p class="help">Your role can read secret names; an operator or admin sets and deletes them.</p>
      )}
      <h2>Secrets</h2>
      <Await loaded={loaded}>{(list) => <SecretsTable secrets={list.items} onDeleted={reload} />}</Await>
    </>
  );
}

function SecretsTable(props: { secrets: SecretInfo[]; onDeleted: () => void }) {
  const { api, can } = useSession();
  if (props.secrets.length === 0) return <p class="help">No secrets yet.</p>;
  return (
    <div class="table-wrap">
      <table aria-label="Secrets">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Updated</th>
            {can('operator') && (
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            )}
          </tr>
        </thead>
        <tbody>
          {props.secrets.map((secret) => (
            <tr key={secret.name} data-secret={secret.name}>
              <td class="mono">{secret.name}</td>
              <td title={formatTime(secret.updatedAt)}>{formatAgo(secret.updatedAt)}</td>
              {can('operator') && (
                <td>
                  <ConfirmButton
                    confirm={{
                      title: `Delete secret ${secret.name}?`,
                      message: 'Its value is gone for good. The hub refuses while an app uses it.',
                      confirmLabel: 'Delete',
                      danger: true,
                    }}
                    onConfirm={async () => {
                      await api.call('secrets.delete', { name: secret.name });
                      props.onDeleted();
                    }}
                  >
                    Delete
                  </ConfirmButton>
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

const FIELDS = ['name', 'value'] as const;

function SetSecretForm(props: { known: readonly string[]; onSet: () => void }) {
  const { api } = useSession();
  const { confirm, dialog } = useConfirm();
  const [name, setName] = useState('');
  const [value, setValue] = useState('');
  const [checked, setChecked] = useState(false);
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<unknown>(null);
  const [done, setDone] = useState<string | null>(null);
  const nameChecked = checkName(name);
  const valueChecked = checkSecretValue(value);
  const nameError = (checked && !nameChecked.ok ? nameChecked.error : undefined) ?? hubIssueAt(failure, 'name');
  const valueError = (checked && !valueChecked.ok ? valueChecked.error : undefined) ?? hubIssueAt(failure, 'value');
  const submit = async (event: Event) => {
    event.preventDefault();
    setChecked(true);
    setFailure(null);
    setDone(null);
    if (!nameChecked.ok || !valueChecked.ok) return;
    const replacing = props.known.includes(nameChecked.value);
    if (
      replacing &&
      !(await confirm({
        title: `Replace secret ${nameChecked.value}?`,
        message: 'The apps that use it get the new value on their devices.',
        confirmLabel: 'Replace',
        danger: true,
      }))
    ) {
      return;
    }
    setBusy(true);
    try {
      await api.call('secrets.set', { name: nameChecked.value, value: valueChecked.value });
      setName('');
      setValue('');
      setChecked(false);
      setDone(`${replacing ? 'Replaced' : 'Set'} secret ${nameChecked.value}.`);
      props.onSet();
    } catch (err) {
      setFailure(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <form class="card admin-form" onSubmit={(event) => void submit(event)} noValidate>
        <h2>Set a secret</h2>
        <div class="admin-fields">
          <Field label="Name" help="an existing name replaces that secret" error={nameError}>
            {(id, describedBy) => (
              <input
                id={id}
                aria-describedby={describedBy}
                aria-invalid={nameError ? true : undefined}
                autocomplete="off"
                spellcheck={false}
                list="admin-secret-names"
                value={name}
                onInput={(event) => setName(event.currentTarget.value)}
              />
            )}
          </Field>
          <datalist id="admin-secret-names">
            {props.known.map((known) => (
              <option key={known} value={known} />
            ))}
          </datalist>
        </div>
        <Field label="Value" help="text, up to 64 KiB; sent once and never shown again" error={valueError}>
          {(id, describedBy) => (
            <textarea
              id={id}
              rows={3}
              aria-describedby={describedBy}
              aria-invalid={valueError ? true : undefined}
              autocomplete="off"
              spellcheck={false}
              value={value}
              onInput={(event) => setValue(event.currentTarget.value)}
            />
          )}
        </Field>
        {failure !== null && !shownAtFields(failure, FIELDS) && <ErrorNote error={failure} />}
        <p role="status" class="notice-line">
          {done}
        </p>
        <button type="submit" disabled={busy} aria-busy={busy || undefined}>
          {busy ? 'Setting…' : 'Set secret'}
        </button>
      </form>
      {dialog}
    </>
  );
}

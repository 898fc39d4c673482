/**
 * Secrets: names and when each was last set, never a value (the hub never
 * returns one). An operator sets and deletes them; the value typed here is
 * sent once and cleared from the form. Replacing an existing secret asks
 * first, since the apps using it get the new value on their devices; the hub
 * refuses to delete one an app still uses, and says which.
 */
import { useState } from 'preact/hooks';
import type { SecretInfo } from '../../../../shared/api/results.js';
import { ACTIONS_COLUMN, Await, DataTable, Field, TextField } from '../components.js';
import { ConfirmButton, useConfirm } from '../confirm.js';
import { formatAgo, formatTime } from '../format.js';
import { useLoad } from '../hooks.js';
import { useSession } from '../session.js';
import { AdminForm, useAdminSubmit } from './admin-form.js';
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
  const operator = can('operator');
  return (
    <DataTable
      label="Secrets"
      columns={[{ label: 'Name' }, { label: 'Updated' }, operator && ACTIONS_COLUMN]}
      items={props.secrets}
      empty={<p class="help">No secrets yet.</p>}
    >
      {(secret) => (
        <tr key={secret.name} data-secret={secret.name}>
          <td class="mono">{secret.name}</td>
          <td title={formatTime(secret.updatedAt)}>{formatAgo(secret.updatedAt)}</td>
          {operator && (
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
              />
            </td>
          )}
        </tr>
      )}
    </DataTable>
  );
}

const FIELDS = ['name', 'value'] as const;

function SetSecretForm(props: { known: readonly string[]; onSet: () => void }) {
  const { api } = useSession();
  const { confirm, dialog } = useConfirm();
  const [name, setName] = useState('');
  const [value, setValue] = useState('');
  const [done, setDone] = useState<string | null>(null);
  const form = useAdminSubmit(FIELDS);
  const nameChecked = checkName(name);
  const valueChecked = checkSecretValue(value);
  const valueError = form.errorAt(valueChecked, 'value');
  const submit = () => {
    setDone(null);
    const secret = nameChecked.ok && valueChecked.ok ? { name: nameChecked.value, value: valueChecked.value } : null;
    const replacing = secret !== null && props.known.includes(secret.name);
    return form.submit(
      secret,
      async (values) => {
        await api.call('secrets.set', values);
        setName('');
        setValue('');
        setDone(`${replacing ? 'Replaced' : 'Set'} secret ${values.name}.`);
        props.onSet();
      },
      async (values) =>
        !replacing ||
        (await confirm({
          title: `Replace secret ${values.name}?`,
          message: 'The apps that use it get the new value on their devices.',
          confirmLabel: 'Replace',
          danger: true,
        })),
    );
  };
  return (
    <>
      <AdminForm
        title="Set a secret"
        submitLabel="Set secret"
        busyLabel="Setting…"
        busy={form.busy}
        note={form.unshown}
        status={
          <p role="status" class="notice-line">
            {done}
          </p>
        }
        onSubmit={() => void submit()}
      >
        <div class="admin-fields">
          <TextField
            label="Name"
            help="an existing name replaces that secret"
            error={form.errorAt(nameChecked, 'name')}
            value={name}
            onValue={setName}
            list="admin-secret-names"
          />
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
      </AdminForm>
      {dialog}
    </>
  );
}

/**
 * Service accounts: API keys for backend services and people, each with a
 * role. The key is shown once, when the account is created; deleting an
 * account closes its connections at once, and the hub refuses to delete the
 * last admin (its message is shown beside the button).
 */
import { useState } from 'preact/hooks';
import { API_ROLES, type ApiRole, type ServiceAccountCreated, type ServiceAccountInfo } from '../../../../shared/api/access.js';
import { ApiCallError } from '../api.js';
import { ACTIONS_COLUMN, Await, DataTable, Field, Options, TextField } from '../components.js';
import { ConfirmButton } from '../confirm.js';
import { formatAgo, formatTime } from '../format.js';
import { useLoad } from '../hooks.js';
import { useSession } from '../session.js';
import { AdminForm, useAdminSubmit } from './admin-form.js';
import { hubIssueAt } from './hub-issues.js';
import { CreateShownOnce } from './shown-once.js';
import { checkName } from './validate.js';

const ROLE_HELP: Record<ApiRole, string> = {
  viewer: 'viewer: reads everything (devices, apps, logs, metrics, secret names)',
  operator: 'operator: also deploys apps, steers rollouts, labels devices and sets secrets',
  admin: 'admin: also manages tokens, service accounts and device revocation',
};

export function ServiceAccountsTab() {
  const { api } = useSession();
  const [loaded, reload] = useLoad(() => api.call('serviceaccounts.list', {}), [api]);
  return (
    <>
      <CreateShownOnce
        form={(onCreated) => <CreateAccountForm onCreated={onCreated} />}
        shown={(created: ServiceAccountCreated) => ({
          label: `Key of ${created.name} (${created.role})`,
          value: created.key,
          help: (
            <p class="help">
              It is the account's bearer token for the API and the console, and its MQTT password with the username{' '}
              <code>{created.name}</code>.
            </p>
          ),
        })}
        onCreated={reload}
      />
      <h2>Service accounts</h2>
      <Await loaded={loaded}>{(list) => <AccountsTable accounts={list.items} onDeleted={reload} />}</Await>
    </>
  );
}

const ACCOUNT_COLUMNS = [{ label: 'Name' }, { label: 'Role' }, { label: 'Created' }, ACTIONS_COLUMN];

function AccountsTable(props: { accounts: ServiceAccountInfo[]; onDeleted: () => void }) {
  const { api, who } = useSession();
  return (
    <DataTable
      label="Service accounts"
      columns={ACCOUNT_COLUMNS}
      items={props.accounts}
      empty={<p class="help">No service accounts yet.</p>}
    >
      {(account) => (
        <tr key={account.name} data-account={account.name}>
          <td class="mono">{account.name}</td>
          <td>{account.role}</td>
          <td title={formatTime(account.createdAt)}>{formatAgo(account.createdAt)}</td>
          <td>
            <ConfirmButton
              confirm={{
                title: `Delete service account ${account.name}?`,
                message:
                  account.name === who.name
                    ? 'This is the account you are logged in with: the console will ask for another key.'
                    : 'Its key stops working and its connections are closed at once.',
                confirmLabel: 'Delete',
                danger: true,
              }}
              onConfirm={async () => {
                await api.call('serviceaccounts.delete', { name: account.name });
                props.onDeleted();
              }}
            />
          </td>
        </tr>
      )}
    </DataTable>
  );
}

const FIELDS = ['name', 'role'] as const;

function CreateAccountForm(props: { onCreated: (account: ServiceAccountCreated) => void }) {
  const { api } = useSession();
  const [name, setName] = useState('');
  const [role, setRole] = useState<ApiRole>('viewer');
  const form = useAdminSubmit(FIELDS);
  const nameChecked = checkName(name);
  // A taken name (409) is about the name, so it is shown there too.
  const nameTaken = form.failure instanceof ApiCallError && form.failure.status === 409 ? form.failure.message : undefined;
  const submit = () =>
    form.submit(nameChecked.ok ? { name: nameChecked.value, role } : null, async (values) => {
      const account = await api.call('serviceaccounts.create', values);
      setName('');
      props.onCreated(account);
    });
  return (
    <AdminForm
      title="New service account"
      submitLabel="Create account"
      busyLabel="Creating…"
      busy={form.busy}
      note={nameTaken ? null : form.unshown}
      onSubmit={() => void submit()}
    >
      <div class="admin-fields">
        <TextField
          label="Name"
          help="lower-case letters, digits and -; also its MQTT username"
          error={form.errorAt(nameChecked, 'name') ?? nameTaken}
          value={name}
          onValue={setName}
        />
        <Field label="Role" help={ROLE_HELP[role]} error={hubIssueAt(form.failure, 'role')}>
          {(id, describedBy) => (
            <select id={id} aria-describedby={describedBy} value={role} onChange={(event) => setRole(event.currentTarget.value as ApiRole)}>
              <Options values={API_ROLES} />
            </select>
          )}
        </Field>
      </div>
    </AdminForm>
  );
}

/**
 * Service accounts: API keys for backend services and people, each with a
 * role. The key is shown once, when the account is created; deleting an
 * account closes its connections at once, and the hub refuses to delete the
 * last admin (its message is shown beside the button).
 */
import { useState } from 'preact/hooks';
import { API_ROLES, type ApiRole, type ServiceAccountCreated, type ServiceAccountInfo } from '../../../../shared/api/access.js';
import { ApiCallError } from '../api.js';
import { Await, ErrorNote, Field } from '../components.js';
import { ConfirmButton } from '../confirm.js';
import { formatAgo, formatTime } from '../format.js';
import { useLoad } from '../hooks.js';
import { useSession } from '../session.js';
import { hubIssueAt, shownAtFields } from './hub-issues.js';
import { ShownOnce } from './shown-once.js';
import { checkName } from './validate.js';

const ROLE_HELP: Record<ApiRole, string> = {
  viewer: 'viewer: reads everything (devices, apps, logs, metrics, secret names)',
  operator: 'operator: also deploys apps, steers rollouts, labels devices and sets secrets',
  admin: 'admin: also manages tokens, service accounts and device revocation',
};

export function ServiceAccountsTab() {
  const { api, who } = useSession();
  const [loaded, reload] = useLoad(() => api.call('serviceaccounts.list', {}), [api]);
  const [created, setCreated] = useState<ServiceAccountCreated | null>(null);
  return (
    <>
      <CreateAccountForm
        onCreated={(account) => {
          setCreated(account);
          reload();
        }}
      />
      {created && (
        <ShownOnce label={`Key of ${created.name} (${created.role})`} value={created.key} onDismiss={() => setCreated(null)}>
          <p class="help">
            It is the account's bearer token for the API and the console, and its MQTT password with the username{' '}
            <code>{created.name}</code>.
          </p>
        </ShownOnce>
      )}
      <h2>Service accounts</h2>
      <Await loaded={loaded}>
        {(list) =>
          list.items.length === 0 ? (
            <p class="help">No service accounts yet.</p>
          ) : (
            <div class="table-wrap">
              <table aria-label="Service accounts">
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Role</th>
                    <th scope="col">Created</th>
                    <th scope="col">
                      <span class="visually-hidden">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {list.items.map((account: ServiceAccountInfo) => (
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
                            reload();
                          }}
                        >
                          Delete
                        </ConfirmButton>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </Await>
    </>
  );
}

const FIELDS = ['name', 'role'] as const;

function CreateAccountForm(props: { onCreated: (account: ServiceAccountCreated) => void }) {
  const { api } = useSession();
  const [name, setName] = useState('');
  const [role, setRole] = useState<ApiRole>('viewer');
  const [checked, setChecked] = useState(false);
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<unknown>(null);
  const nameChecked = checkName(name);
  // A taken name (409) is about the name, so it is shown there too.
  const nameTaken = failure instanceof ApiCallError && failure.status === 409 ? failure.message : undefined;
  const nameError = (checked && !nameChecked.ok ? nameChecked.error : undefined) ?? hubIssueAt(failure, 'name') ?? nameTaken;
  const submit = async (event: Event) => {
    event.preventDefault();
    setChecked(true);
    setFailure(null);
    if (!nameChecked.ok) return;
    setBusy(true);
    try {
      const account = await api.call('serviceaccounts.create', { name: nameChecked.value, role });
      setName('');
      setChecked(false);
      props.onCreated(account);
    } catch (err) {
      setFailure(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="card admin-form" onSubmit={(event) => void submit(event)} noValidate>
      <h2>New service account</h2>
      <div class="admin-fields">
        <Field label="Name" help="lower-case letters, digits and -; also its MQTT username" error={nameError}>
          {(id, describedBy) => (
            <input
              id={id}
              aria-describedby={describedBy}
              aria-invalid={nameError ? true : undefined}
              autocomplete="off"
              spellcheck={false}
              value={name}
              onInput={(event) => setName(event.currentTarget.value)}
            />
          )}
        </Field>
        <Field label="Role" help={ROLE_HELP[role]} error={hubIssueAt(failure, 'role')}>
          {(id, describedBy) => (
            <select id={id} aria-describedby={describedBy} value={role} onChange={(event) => setRole(event.currentTarget.value as ApiRole)}>
              {API_ROLES.map((r) => (
                <option key={r} value={r}>
                  {r}
                </option>
              ))}
            </select>
          )}
        </Field>
      </div>
      {failure !== null && !nameTaken && !shownAtFields(failure, FIELDS) && <ErrorNote error={failure} />}
      <button type="submit" disabled={busy} aria-busy={busy || undefined}>
        {busy ? 'Creating…' : 'Create account'}
      </button>
    </form>
  );
}

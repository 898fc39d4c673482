/**
 * Registration tokens: what a new device trades for its credentials. The
 * token itself is shown once, when it is created; the list shows ids, which
 * are what `Revoke` needs and are no use for registering.
 */
import { useState } from 'preact/hooks';
import type { TokenCreated, TokenInfo } from '../../../../shared/api/access.js';
import { ACTIONS_COLUMN, Await, DataTable, LabelChips, TextField } from '../components.js';
import { ConfirmButton } from '../confirm.js';
import { formatAgo, formatTime } from '../format.js';
import { useLoad } from '../hooks.js';
import { useSession } from '../session.js';
import { AdminForm, useAdminSubmit } from './admin-form.js';
import { CreateShownOnce } from './shown-once.js';
import { checkExpiryHours, checkLabels, checkPositiveInteger, MAX_TOKEN_USES } from './validate.js';

export function TokensTab() {
  const { api } = useSession();
  const [loaded, reload] = useLoad(() => api.call('tokens.list', {}), [api]);
  return (
    <>
      <CreateShownOnce
        form={(onCreated) => <CreateTokenForm onCreated={onCreated} />}
        shown={(created: TokenCreated) => ({ label: `Token ${created.id}`, value: created.token, help: <TokenUse token={created} /> })}
        onCreated={reload}
      />
      <h2>Tokens</h2>
      <Await loaded={loaded}>{(list) => <TokensTable tokens={list.items} onRevoked={reload} />}</Await>
    </>
  );
}

function TokenUse({ token }: { token: TokenCreated }) {
  return (
    <p class="help">
      On the device: <code>flotilla agent register --hub URL --token TOKEN</code>, or the install script's <code>--token</code>. It admits{' '}
      {token.maxUses ?? 'any number of'} device{token.maxUses === 1 ? '' : 's'}
      {token.expiresAt ? `, until ${formatTime(token.expiresAt)}` : ''}.
    </p>
  );
}

const FIELDS = ['labels', 'maxUses', 'expiresInSeconds'] as const;

function CreateTokenForm(props: { onCreated: (token: TokenCreated) => void }) {
  const { api } = useSession();
  const [labels, setLabels] = useState('');
  const [maxUses, setMaxUses] = useState('1');
  const [hours, setHours] = useState('24');
  const form = useAdminSubmit(FIELDS);
  const labelsChecked = checkLabels(labels);
  const usesChecked = checkPositiveInteger(maxUses, MAX_TOKEN_USES);
  const hoursChecked = checkExpiryHours(hours);
  const params =
    labelsChecked.ok && usesChecked.ok && hoursChecked.ok
      ? { labels: labelsChecked.value, maxUses: usesChecked.value, expiresInSeconds: hoursChecked.value }
      : null;
  const submit = () =>
    form.submit(params, async (values) => {
      const token = await api.call('tokens.create', values);
      setLabels('');
      props.onCreated(token);
    });
  return (
    <AdminForm
      title="New registration token"
      submitLabel="Create token"
      busyLabel="Creating…"
      busy={form.busy}
      note={form.unshown}
      onSubmit={() => void submit()}
    >
      <div class="admin-fields">
        <TextField
          label="Labels"
          help="k=v, k2=v2: every device registered with it gets them"
          error={form.errorAt(labelsChecked, 'labels')}
          value={labels}
          onValue={setLabels}
          placeholder="site=roof, tier=edge"
        />
        <TextField
          label="Max uses"
          help="how many devices may register with it"
          error={form.errorAt(usesChecked, 'maxUses')}
          value={maxUses}
          onValue={setMaxUses}
          type="number"
          inputMode="numeric"
          min={1}
          max={MAX_TOKEN_USES}
          step={1}
        />
        <TextField
          label="Expires in (hours)"
          error={form.errorAt(hoursChecked, 'expiresInSeconds')}
          value={hours}
          onValue={setHours}
          type="number"
          inputMode="decimal"
          min={0}
          step="any"
        />
      </div>
    </AdminForm>
  );
}

const TOKEN_COLUMNS = [
  { label: 'ID' },
  { label: 'Labels' },
  { label: 'Uses' },
  { label: 'Expires' },
  { label: 'State' },
  { label: 'Created', class: 'hide-narrow' },
  ACTIONS_COLUMN,
];

function TokensTable(props: { tokens: TokenInfo[]; onRevoked: () => void }) {
  const { api } = useSession();
  const now = Date.now();
  return (
    <DataTable label="Tokens" columns={TOKEN_COLUMNS} items={props.tokens} empty={<p class="help">No registration tokens yet.</p>}>
      {(token) => {
        const state = tokenState(token, now);
        return (
          <tr key={token.id} data-token={token.id}>
            <td class="mono">{token.id}</td>
            <td>
              <LabelChips labels={token.labels} />
            </td>
            <td>
              {token.uses} / {token.maxUses ?? '∞'}
            </td>
            <td title={formatTime(token.expiresAt)}>{token.expiresAt ? formatTime(token.expiresAt) : 'never'}</td>
            <td>
              <span class={`badge ${state === 'usable' ? 'ok' : 'off'}`}>{state}</span>
            </td>
            <td class="hide-narrow" title={formatTime(token.createdAt)}>
              {formatAgo(token.createdAt, now)}
            </td>
            <td>
              {!token.revoked && (
                <ConfirmButton
                  confirm={{
                    title: `Revoke token ${token.id}?`,
                    message: 'No device can register with it from now on. Devices already registered with it keep working.',
                    confirmLabel: 'Revoke',
                    danger: true,
                  }}
                  onConfirm={async () => {
                    await api.call('tokens.revoke', { id: token.id });
                    props.onRevoked();
                  }}
                />
              )}
            </td>
          </tr>
        );
      }}
    </DataTable>
  );
}

/** What a token is good for now: revoked and expired outrank used up. */
export function tokenState(token: TokenInfo, now: number): 'revoked' | 'expired' | 'used up' | 'usable' {
  if (token.revoked) return 'revoked';
  if (token.expiresAt && Date.parse(token.expiresAt) <= now) return 'expired';
  if (token.maxUses !== null && token.uses >= token.maxUses) return 'used up';
  return 'usable';
}

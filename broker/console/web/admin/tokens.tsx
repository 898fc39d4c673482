/**
 * Registration tokens: what a new device trades for its credentials. The
 * token itself is shown once, when it is created; the list shows ids, which
 * are what `Revoke` needs and are no use for registering.
 */
import { useState } from 'preact/hooks';
import type { TokenCreated, TokenInfo } from '../../../../shared/api/access.js';
import { Await, ErrorNote, Field } from '../components.js';
import { ConfirmButton } from '../confirm.js';
import { formatAgo, formatLabels, formatTime } from '../format.js';
import { useLoad } from '../hooks.js';
import { useSession } from '../session.js';
import { hubIssueAt, shownAtFields } from './hub-issues.js';
import { ShownOnce } from './shown-once.js';
import { checkExpiryHours, checkLabels, checkPositiveInteger, MAX_TOKEN_USES } from './validate.js';

export function TokensTab() {
  const { api } = useSession();
  const [loaded, reload] = useLoad(() => api.call('tokens.list', {}), [api]);
  const [created, setCreated] = useState<TokenCreated | null>(null);
  return (
    <>
      <CreateTokenForm
        onCreated={(token) => {
          setCreated(token);
          reload();
        }}
      />
      {created && (
        <ShownOnce label={`Token ${created.id}`} value={created.token} onDismiss={() => setCreated(null)}>
          <p class="help">
            On the device: <code>flotilla agent register --hub URL --token TOKEN</code>, or the install script's <code>--token</code>. It
            admits {created.maxUses ?? 'any number of'} device{created.maxUses === 1 ? '' : 's'}
            {created.expiresAt ? `, until ${formatTime(created.expiresAt)}` : ''}.
          </p>
        </ShownOnce>
      )}
      <h2>Tokens</h2>
      <Await loaded={loaded}>{(list) => <TokensTable tokens={list.items} onRevoked={reload} />}</Await>
    </>
  );
}

const FIELDS = ['labels', 'maxUses', 'expiresInSeconds'] as const;

function CreateTokenForm(props: { onCreated: (token: TokenCreated) => void }) {
  const { api } = useSession();
  const [labels, setLabels] = useState('');
  const [maxUses, setMaxUses] = useState('1');
  const [hours, setHours] = useState('24');
  const [checked, setChecked] = useState(false);
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<unknown>(null);
  const labelsChecked = checkLabels(labels);
  const usesChecked = checkPositiveInteger(maxUses, MAX_TOKEN_USES);
  const hoursChecked = checkExpiryHours(hours);
  const errorOf = (result: { ok: boolean; error?: string }, field: (typeof FIELDS)[number]) =>
    (checked && !result.ok ? result.error : undefined) ?? hubIssueAt(failure, field);
  const submit = async (event: Event) => {
    event.preventDefault();
    setChecked(true);
    setFailure(null);
    if (!labelsChecked.ok || !usesChecked.ok || !hoursChecked.ok) return;
    setBusy(true);
    try {
      const token = await api.call('tokens.create', {
        labels: labelsChecked.value,
        maxUses: usesChecked.value,
        expiresInSeconds: hoursChecked.value,
      });
      setLabels('');
      setChecked(false);
      props.onCreated(token);
    } catch (err) {
      setFailure(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="card admin-form" onSubmit={(event) => void submit(event)} noValidate>
      <h2>New registration token</h2>
      <div class="admin-fields">
        <Field label="Labels" help="k=v, k2=v2: every device registered with it gets them" error={errorOf(labelsChecked, 'labels')}>
          {(id, describedBy) => (
            <input
              id={id}
              aria-describedby={describedBy}
              aria-invalid={errorOf(labelsChecked, 'labels') ? true : undefined}
              value={labels}
              placeholder="site=roof, tier=edge"
              onInput={(event) => setLabels(event.currentTarget.value)}
            />
          )}
        </Field>
        <Field label="Max uses" help="how many devices may register with it" error={errorOf(usesChecked, 'maxUses')}>
          {(id, describedBy) => (
            <input
              id={id}
              type="number"
              inputMode="numeric"
              min={1}
              max={MAX_TOKEN_USES}
              step={1}
              aria-describedby={describedBy}
              aria-invalid={errorOf(usesChecked, 'maxUses') ? true : undefined}
              value={maxUses}
              onInput={(event) => setMaxUses(event.currentTarget.value)}
            />
          )}
        </Field>
        <Field label="Expires in (hours)" error={errorOf(hoursChecked, 'expiresInSeconds')}>
          {(id, describedBy) => (
            <input
              id={id}
              type="number"
              inputMode="decimal"
              min={0}
              step="any"
              aria-describedby={describedBy}
              aria-invalid={errorOf(hoursChecked, 'expiresInSeconds') ? true : undefined}
              value={hours}
              onInput={(event) => setHours(event.currentTarget.value)}
            />
          )}
        </Field>
      </div>
      {failure !== null && !shownAtFields(failure, FIELDS) && <ErrorNote error={failure} />}
      <button type="submit" disabled={busy} aria-busy={busy || undefined}>
        {busy ? 'Creating…' : 'Create token'}
      </button>
    </form>
  );
}

function TokensTable(props: { tokens: TokenInfo[]; onRevoked: () => void }) {
  const { api } = useSession();
  if (props.tokens.length === 0) return <p class="help">No registration tokens yet.</p>;
  const now = Date.now();
  return (
    <div class="table-wrap">
      <table aria-label="Tokens">
        <thead>
          <tr>
            <th scope="col">ID</th>
            <th scope="col">Labels</th>
            <th scope="col">Uses</th>
            <th scope="col">Expires</th>
            <th scope="col">State</th>
            <th scope="col" class="hide-narrow">
              Created
            </th>
            <th scope="col">
              <span class="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {props.tokens.map((token) => {
            const state = tokenState(token, now);
            return (
              <tr key={token.id} data-token={token.id}>
                <td class="mono">{token.id}</td>
                <td>
                  {formatLabels(token.labels).map((label) => (
                    <span key={label} class="label">
                      {label}
                    </span>
                  ))}
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
                    >
                      Revoke
                    </ConfirmButton>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

/** What a token is good for now: revoked and expired outrank used up. */
export function tokenState(token: TokenInfo, now: number): 'revoked' | 'expired' | 'used up' | 'usable' {
  if (token.revoked) return 'revoked';
  if (token.expiresAt && Date.parse(token.expiresAt) <= now) return 'expired';
  if (token.maxUses !== null && token.uses >= token.maxUses) return 'used up';
  return 'usable';
}

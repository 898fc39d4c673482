/**
 * Revoking a device: its secret is refused from then on and its connection
 * is closed (a stolen or retired device). The device stays listed, marked
 * revoked, so its history remains; there is no un-revoke, so it asks first.
 */
import { useState } from 'preact/hooks';
import type { DeviceRevoked } from '../../../../shared/api/access.js';
import type { DeviceView } from '../../../../shared/api/results.js';
import { ACTIONS_COLUMN, Await, DataTable, OnlineBadge } from '../components.js';
import { ConfirmButton } from '../confirm.js';
import { formatAgo, formatTime } from '../format.js';
import { useLoad } from '../hooks.js';
import { href } from '../router.js';
import { useSession } from '../session.js';

export function DevicesTab() {
  const { api } = useSession();
  const [loaded, reload] = useLoad(() => api.call('devices.list', {}), [api]);
  const [revoked, setRevoked] = useState<DeviceRevoked | null>(null);
  return (
    <>
      <p class="help">
        Revoking a device refuses its credentials from then on and closes its connection. To bring it back, register it again with a new
        token.
      </p>
      <p role="status" class="notice-line">
        {revoked &&
          `Revoked ${revoked.id}: ${revoked.disconnected ? 'it was connected and has been disconnected' : 'it was not connected (disconnected: false)'}.`}
      </p>
      <h2>Devices</h2>
      <Await loaded={loaded}>
        {(list) => (
          <DevicesTable
            devices={list.items}
            onRevoke={async (id) => {
              setRevoked(null);
              setRevoked(await api.call('devices.revoke', { id }));
              reload();
            }}
          />
        )}
      </Await>
    </>
  );
}

const DEVICE_COLUMNS = [
  { label: 'ID' },
  { label: 'Status' },
  { label: 'Last seen', class: 'hide-narrow' },
  { label: 'Revoked' },
  ACTIONS_COLUMN,
];

function DevicesTable(props: { devices: DeviceView[]; onRevoke: (id: string) => Promise<void> }) {
  const devices = [...props.devices].sort((a, b) => a.id.localeCompare(b.id));
  return (
    <DataTable label="Devices" columns={DEVICE_COLUMNS} items={devices} empty={<p class="help">No devices have registered yet.</p>}>
      {(device) => (
        <tr key={device.id} data-device={device.id}>
          <td>
            <a class="mono" href={href(['devices', device.id])}>
              {device.id}
            </a>
          </td>
          <td>
            <OnlineBadge online={device.online} />
          </td>
          <td class="hide-narrow" title={formatTime(device.lastSeen)}>
            {formatAgo(device.lastSeen)}
          </td>
          <td title={formatTime(device.revokedAt)}>
            {device.revokedAt ? <span class="badge bad">revoked {formatAgo(device.revokedAt)}</span> : 'no'}
          </td>
          <td>
            {!device.revokedAt && (
              <ConfirmButton
                confirm={{
                  title: `Revoke device ${device.id}?`,
                  message: `${device.id} can no longer connect${device.online ? ' and is disconnected now' : ''}. This cannot be undone: it would have to register again with a new token.`,
                  confirmLabel: 'Revoke',
                  danger: true,
                }}
                onConfirm={() => props.onRevoke(device.id)}
              />
            )}
          </td>
        </tr>
      )}
    </DataTable>
  );
}

/**
 * An app's Overview tab: its revision and scheduling, every device it is
 * scheduled onto with how that device runs it, and the current spec as YAML;
 * operators may delete the app from here.
 * Polled every 5 s, like the apps list.
 */
import type { AppDetail } from '../../../../shared/api/results.js';
import { DataTable, OnlineBadge, PhaseBadge } from '../components.js';
import { ConfirmButton } from '../confirm.js';
import { SpecText } from '../editor/spec-text.js';
import { formatAgo, formatTime } from '../format.js';
import { useInterval, useLoad } from '../hooks.js';
import { href } from '../router.js';
import { useSession } from '../session.js';
import { Polled } from './polled.js';
import { formatScheduling } from './scheduling-text.js';

const POLL_MS = 5000;

export function AppOverview({ name }: { name: string }) {
  const { api } = useSession();
  const [app, reload] = useLoad(() => api.call('apps.get', { name }), [api, name]);
  useInterval(reload, POLL_MS);
  return <Polled loaded={app}>{(value) => <Overview app={value} />}</Polled>;
}

const PLACEMENT_COLUMNS = [
  { label: 'Device' },
  { label: 'Status' },
  { label: 'Phase' },
  { label: 'Revision', class: 'num' },
  { label: 'Message' },
];

function Overview({ app }: { app: AppDetail }) {
  const { api, can } = useSession();
  const onCurrent = app.devices.filter((d) => d.revision === app.revision && d.phase === 'running').length;
  return (
    <>
      <dl class="facts card">
        <dt>Revision</dt>
        <dd>
          {app.revision} (<a href={href(['apps', app.name, 'revisions'])}>history</a>)
        </dd>
        <dt>Scheduling</dt>
        <dd class="mono">{formatScheduling(app.spec.scheduling)}</dd>
        <dt>Containers</dt>
        <dd>{app.spec.spec.containers.map((c) => `${c.name} (${c.image})`).join(', ')}</dd>
        <dt>Running</dt>
        <dd>
          {onCurrent} of {app.devices.length} devices on revision {app.revision}
        </dd>
        <dt>Updated</dt>
        <dd title={formatTime(app.updatedAt)}>{formatAgo(app.updatedAt)}</dd>
      </dl>
      <h2>Where it runs</h2>
      <DataTable
        label="Where it runs"
        columns={PLACEMENT_COLUMNS}
        items={app.devices}
        empty={<p class="notice">No device matches its scheduling yet.</p>}
      >
        {(device) => (
          <tr key={device.id} data-device={device.id}>
            <td>
              <a href={href(['devices', device.id])}>{device.id}</a>
            </td>
            <td>
              <OnlineBadge online={device.online} />
            </td>
            <td>
              <PhaseBadge phase={device.phase} />
            </td>
            <td class="num">{device.revision ?? '–'}</td>
            <td class="wrap">{device.message ?? ''}</td>
          </tr>
        )}
      </DataTable>
      <h2>Spec</h2>
      <SpecText spec={app.spec} label={`Spec of revision ${app.revision}`} />
      {can('operator') && (
        <div class="toolbar danger-zone">
          <ConfirmButton
            confirm={{
              title: `Delete app ${app.name}?`,
              message: `Every device stops and removes its containers (named volumes are kept), and the hub forgets the app and its ${app.revision} revision${app.revision === 1 ? '' : 's'}.`,
              confirmLabel: 'Delete',
              danger: true,
            }}
            onConfirm={async () => {
              await api.call('apps.delete', { name: app.name });
              location.hash = href(['apps']);
            }}
          >
            Delete app
          </ConfirmButton>
        </div>
      )}
    </>
  );
}

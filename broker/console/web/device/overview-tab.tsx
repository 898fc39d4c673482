/**
 * The Overview tab: the device's host, its standing with the hub (online,
 * revisions, errors), its labels (editable by operators) and each app with
 * its containers. The device is polled by the page (device.tsx), so this tab
 * only draws what it is handed.
 */
import type { DeviceView } from '../../../../shared/api/results.js';
import { DataTable, OnlineBadge, PhaseBadge } from '../components.js';
import { formatAgo, formatTime } from '../format.js';
import { useSession } from '../session.js';
import { LabelEditor } from './label-editor.js';

/** App, Phase, Revision and Message span an app's container rows. */
const APP_COLUMNS = [
  { label: 'App' },
  { label: 'Phase' },
  { label: 'Revision', class: 'num' },
  { label: 'Container' },
  { label: 'State' },
  { label: 'Restarts', class: 'num' },
  { label: 'Image', class: 'hide-narrow' },
  { label: 'Message' },
];

export function OverviewTab({ device, onChanged }: { device: DeviceView; onChanged: () => void }) {
  const { can } = useSession();
  const host = device.host;
  const converged = device.observedRevision === device.desiredRevision;
  return (
    <>
      {device.runtimeError && (
        <p class="error" role="alert">
          The agent cannot reach its container engine: {device.runtimeError}
        </p>
      )}
      {device.idClash && (
        <p class="error" role="alert">
          Two connections keep taking this device's id ({device.idClash.takeovers} takeovers since {formatTime(device.idClash.since)}, from{' '}
          {device.idClash.addresses.join(', ')}).
        </p>
      )}
      {device.revokedAt && <p class="notice">Revoked {formatTime(device.revokedAt)}: the hub refuses its connections.</p>}
      <div class="grid">
        <section class="card" aria-labelledby="device-status">
          <h2 id="device-status">Status</h2>
          <dl class="facts">
            <dt>Connection</dt>
            <dd>
              <OnlineBadge online={device.online} />
            </dd>
            <dt>Last seen</dt>
            <dd title={formatTime(device.lastSeen)}>{formatAgo(device.lastSeen)}</dd>
            <dt>Desired revision</dt>
            <dd>{device.desiredRevision}</dd>
            <dt>Observed revision</dt>
            <dd>
              {device.observedRevision ?? '–'} {!converged && <span class="badge busy">converging</span>}
            </dd>
          </dl>
        </section>
        <section class="card" aria-labelledby="device-host">
          <h2 id="device-host">Host</h2>
          {host ? (
            <dl class="facts">
              <dt>Hostname</dt>
              <dd>{host.hostname}</dd>
              <dt>OS</dt>
              <dd>{host.os}</dd>
              <dt>Architecture</dt>
              <dd>{host.arch}</dd>
              <dt>Kernel</dt>
              <dd>{host.kernel ?? '–'}</dd>
              <dt>Docker</dt>
              <dd>{host.dockerVersion ?? '–'}</dd>
              <dt>Agent</dt>
              <dd>{host.agentVersion}</dd>
              <dt>Node.js</dt>
              <dd>{host.nodeVersion ?? '–'}</dd>
            </dl>
          ) : (
            <p class="help">The device has not reported its host yet.</p>
          )}
        </section>
        <section class="card" aria-labelledby="device-labels">
          <h2 id="device-labels">Labels</h2>
          <LabelEditor device={device} editable={can('operator')} onChanged={onChanged} />
        </section>
      </div>
      <h2>Apps</h2>
      <DataTable
        label="Apps on this device"
        columns={APP_COLUMNS}
        items={device.apps}
        empty={<p class="help">No apps run on this device.</p>}
      >
        {(app) => {
          const containers = app.containers.length > 0 ? app.containers : [undefined];
          return containers.map((c, i) => (
            <tr key={`${app.name}/${c?.name ?? ''}`} data-app={app.name}>
              {i === 0 && (
                <>
                  <th scope="row" rowSpan={containers.length}>
                    <a href={`#/apps/${encodeURIComponent(app.name)}`}>{app.name}</a>
                  </th>
                  <td rowSpan={containers.length}>
                    <PhaseBadge phase={app.phase} />
                  </td>
                  <td rowSpan={containers.length} class="num">
                    {app.revision}
                  </td>
                </>
              )}
              <td>{c?.name ?? '–'}</td>
              <td title={c?.status}>
                {c ? <PhaseBadge phase={c.state} /> : '–'}
                {c?.exitCode !== undefined && c.state !== 'running' ? ` (exit ${c.exitCode})` : ''}
              </td>
              <td class="num">{c?.restartCount ?? '–'}</td>
              <td class="hide-narrow mono">{c?.image ?? '–'}</td>
              {i === 0 && (
                <td rowSpan={containers.length} class="wrap">
                  {app.message ?? ''}
                </td>
              )}
            </tr>
          ));
        }}
      </DataTable>
    </>
  );
}

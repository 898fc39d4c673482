/**
 * Apps (`#/apps`): every app with its revision, where it is scheduled, and
 * how many of the devices it matches run its current revision. Polled every
 * 5 s: apps change by someone's apply, rarely, and a poll needs no stream.
 */
import type { AppSummary } from '../../../../shared/api/results.js';
import { Polled } from '../apps/polled.js';
import { formatScheduling } from '../apps/scheduling-text.js';
import { DataTable } from '../components.js';
import { formatAgo, formatTime } from '../format.js';
import { useInterval, useLoad } from '../hooks.js';
import { href } from '../router.js';
import { useSession } from '../session.js';
import '../apps/apps.css';

const POLL_MS = 5000;

export function AppsView() {
  const { api, can } = useSession();
  const [apps, reload] = useLoad(() => api.call('apps.list', {}), [api]);
  useInterval(reload, POLL_MS);
  return (
    <section>
      <div class="toolbar">
        <h1 class="grow flush">Apps</h1>
        {can('operator') && (
          <a class="button" href={href(['apply'])}>
            New app
          </a>
        )}
      </div>
      <Polled loaded={apps}>{({ items }) => <AppsTable apps={items} />}</Polled>
    </section>
  );
}

const APP_COLUMNS = [
  { label: 'Name' },
  { label: 'Revision', class: 'num' },
  { label: 'Scheduling' },
  { label: 'Containers', class: 'num hide-narrow' },
  { label: 'Running', class: 'num', title: 'devices running the current revision / devices it is scheduled onto' },
  { label: 'Updated', class: 'hide-narrow' },
];

function AppsTable({ apps }: { apps: AppSummary[] }) {
  const sorted = [...apps].sort((a, b) => a.name.localeCompare(b.name));
  const none = (
    <>
      No apps yet. An operator adds one with New app, or <code>flotilla apply -f app.yaml</code>.
    </>
  );
  return (
    <DataTable label="Apps" columns={APP_COLUMNS} items={sorted} emptyRow={{ text: none, class: 'wrap' }}>
      {(app) => (
        <tr key={app.name} data-app={app.name}>
          <td>
            <a href={href(['apps', app.name])}>{app.name}</a>
          </td>
          <td class="num">{app.revision}</td>
          <td class="mono wrap">{formatScheduling(app.scheduling)}</td>
          <td class="num hide-narrow">{app.containers}</td>
          <td class="num">
            <span class={app.devices.running < app.devices.matched ? 'behind' : undefined}>
              {app.devices.running} / {app.devices.matched}
              <span class="visually-hidden"> devices</span>
            </span>
          </td>
          <td class="hide-narrow" title={formatTime(app.updatedAt)}>
            {formatAgo(app.updatedAt)}
          </td>
        </tr>
      )}
    </DataTable>
  );
}

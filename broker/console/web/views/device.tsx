/**
 * A device's page (`#/devices/ID/TAB`): the device is polled every 3 s while
 * the page is open and handed to the tabs, which keep their own streams
 * (logs, metrics, events, the terminal session). A reload keeps the last
 * answer on screen, so nothing flickers.
 */
import { useRef } from 'preact/hooks';
import type { DeviceView as Device } from '../../../../shared/api/results.js';
import { ErrorNote, OnlineBadge, type Tab, Tabs } from '../components.js';
import { EventsTab } from '../device/events-tab.js';
import { LogsTab } from '../device/logs-tab.js';
import { MetricsTab } from '../device/metrics-tab.js';
import { OverviewTab } from '../device/overview-tab.js';
import { useInterval, useLoad } from '../hooks.js';
import { useSession } from '../session.js';
import { TerminalTab } from '../terminal/terminal-tab.js';
import '../device/device.css';

const POLL_MS = 3000;

export function DeviceView({ id, tab }: { id: string; tab: string }) {
  const { api, can } = useSession();
  const [loaded, reload] = useLoad(() => api.call('devices.get', { id }), [api, id]);
  useInterval(reload, POLL_MS);
  // The last answer stays on screen through a failed poll, with the failure above it.
  const lastGood = useRef<Device | undefined>();
  if (loaded.state === 'ready') lastGood.current = loaded.value;
  const device = lastGood.current;
  const tabs: Tab[] = [
    { id: 'overview', label: 'Overview' },
    { id: 'logs', label: 'Logs' },
    { id: 'metrics', label: 'Metrics' },
    { id: 'events', label: 'Events' },
    ...(can('operator') ? [{ id: 'terminal', label: 'Terminal' }] : []),
  ];
  return (
    <section class="device-page">
      <div class="title-row">
        <h1>{id}</h1>
        {device && <OnlineBadge online={device.online} />}
      </div>
      <Tabs base={['devices', id]} tabs={tabs} current={tab} label="Device" />
      {loaded.state === 'failed' && <ErrorNote error={loaded.error} />}
      {tab === 'overview' &&
        (device ? <OverviewTab device={device} onChanged={reload} /> : loaded.state === 'loading' && <p class="loading">Loading…</p>)}
      {tab === 'logs' && <LogsTab id={id} apps={device?.apps.map((a) => a.name) ?? []} />}
      {tab === 'metrics' && <MetricsTab id={id} />}
      {tab === 'events' && <EventsTab id={id} />}
      {tab === 'terminal' &&
        (can('operator') ? (
          <TerminalTab id={id} device={device} />
        ) : (
          <p class="notice">Only operators and admins open terminals on devices.</p>
        ))}
      {!tabs.some((t) => t.id === tab) && tab !== 'terminal' && <p class="notice">This device has no “{tab}” tab.</p>}
    </section>
  );
}

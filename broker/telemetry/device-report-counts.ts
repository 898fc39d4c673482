/**
 * The Prometheus series that come from the devices' stored state reports (the agent each device
 * runs and its upgrade, the fleet's image downloads), from one read of the fleet's rows and one
 * parse of each report per scrape. The reports are the largest thing the hub stores per device,
 * so their parse is what such a scrape costs; every series built from them shares it.
 * Pure: the hub reads the rows, this adds them up.
 */
import type { DeviceState } from '../../shared/index.js';
import { type AgentFleetCounts, agentFleetCounts, reportedAgentOf } from '../dispatcher/agent-plan.js';
import type { FleetDeviceRow } from '../store/devices.js';
import { type ImageDownloadCounts, imageDownloadCounts } from './image-download-counts.js';

export interface DeviceReportCounts {
  /** Devices per reported agent version and upgrade phase (broker/dispatcher/agent-plan.ts). */
  agents: AgentFleetCounts;
  /** The devices' image download totals and states, summed over the fleet (image-download-counts.ts). */
  imageDownloads: ImageDownloadCounts;
}

/** Counts over the fleet's rows, each row's state (stored JSON text, `null` before a first report) parsed once. */
export function deviceReportCounts(rows: Iterable<Pick<FleetDeviceRow, 'state'>>): DeviceReportCounts {
  const states: (DeviceState | null)[] = [];
  for (const row of rows) states.push(row.state === null ? null : (JSON.parse(row.state) as DeviceState));
  return { agents: agentFleetCounts(states.map(reportedAgentOf)), imageDownloads: imageDownloadCounts(states) };
}

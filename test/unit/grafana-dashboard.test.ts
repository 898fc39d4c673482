/**
 * docker/grafana/flotilla-fleet.json stays importable and in step with the
 * exporter: every query names only series docs/telemetry.md documents (or the
 * process metrics), and every panel reads the dashboard's datasource variable.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');
const dashboard = JSON.parse(readFileSync(join(root, 'docker/grafana/flotilla-fleet.json'), 'utf8'));
const documented = new Set(
  [...readFileSync(join(root, 'docs/telemetry.md'), 'utf8').matchAll(/^\| `(flotilla_[a-z0-9_]+)` /gm)].map((m) => m[1]!),
);

interface Panel {
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: { expr: string; datasource: { uid: string } }[];
}

const panels = dashboard.panels as Panel[];
const queries = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, ...t })));

describe('Grafana dashboard', () => {
  it('has a Prometheus datasource variable and a device filter', () => {
    const variables = dashboard.templating.list as { name: string; type: string; query: unknown }[];
    expect(variables.find((v) => v.name === 'datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    expect(variables.find((v) => v.name === 'device')).toMatchObject({ type: 'query' });
    expect(dashboard.uid).toBe('flotilla-fleet');
  });

  it('queries through the datasource variable in every panel', () => {
    const variable = ['$', '{datasource}'].join(''); // Grafana's syntax, not a JS template
    for (const p of panels.filter((p) => p.type !== 'row')) expect(p.datasource?.uid, p.title).toBe(variable);
    for (const q of queries) expect(q.datasource.uid, q.panel).toBe(variable);
  });

  it('uses only documented series', () => {
    expect(queries.length).toBeGreaterThan(20);
    for (const q of queries) {
      for (const [name] of q.expr.matchAll(/flotilla_[a-z0-9_]+/g)) {
        if (!name.startsWith('flotilla_hub_')) expect(documented, `${q.panel}: ${q.expr}`).toContain(name);
      }
    }
  });

  it('shows devices online, CPU, memory, disk, apps running and failed, MQTT rates and ingest lag', () => {
    const all = queries.map((q) => q.expr).join('\n');
    for (const needed of [
      'flotilla_devices_online',
      'flotilla_device_cpu_percent',
      'flotilla_device_memory_used_bytes',
      'flotilla_device_disk_used_bytes',
      'flotilla_app_devices{phase="running"}',
      'flotilla_app_devices{phase=~"failed|rolled-back"}',
      'rate(flotilla_mqtt_messages_received_total',
      'rate(flotilla_mqtt_messages_sent_total',
      'flotilla_telemetry_ingest_lag_seconds',
    ]) {
      expect(all).toContain(needed);
    }
  });

  it('lays panels out without overlap', () => {
    const cells = new Set<string>();
    for (const p of dashboard.panels as { title: string; gridPos: { x: number; y: number; w: number; h: number } }[]) {
      const { x, y, w, h } = p.gridPos;
      expect(x + w, p.title).toBeLessThanOrEqual(24);
      for (let i = x; i < x + w; i++) {
        for (let j = y; j < y + h; j++) {
          expect(cells.has(`${i},${j}`), `${p.title} overlaps at ${i},${j}`).toBe(false);
          cells.add(`${i},${j}`);
        }
      }
    }
  });
});

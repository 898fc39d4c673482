/**
 * `flotilla inventory` from a real hub (Aedes, HTTP API, SQLite, started in
 * this process) with devices that reported labels over MQTT, and read by
 * Debian's real `ansible-inventory` through the executable inventory file
 * (cli/flotilla-inventory.js, what `flotilla-inventory` is in the release).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DeviceState, Topics } from '../../../shared/index.js';
import { Cleanup } from '../../support/cleanup.js';
import { deviceState } from '../../support/fixtures.js';
import { http } from '../../support/http.js';
import { startTestHub, type TestHub } from '../../support/hub.js';
import { closeClient, connectClient } from '../../support/mqtt-client.js';
import { REPO_ROOT, runCli } from '../../support/processes.js';
import { scratchDir } from '../../support/scratch.js';
import { waitFor } from '../../support/wait.js';

const SLOW = { timeout: 90_000 };
const run = promisify(execFile);
const topics = new Topics();
const INVENTORY_FILE = join(REPO_ROOT, 'cli/flotilla-inventory.js');
const cleanup = new Cleanup();
let hub: TestHub;
let token: string;

async function reportDevice(id: string, online: boolean, overrides: Partial<DeviceState>): Promise<MqttClient> {
  const client = await connectClient(hub.mqttUrl, { clientId: id });
  cleanup.add(`device ${id}`, () => closeClient(client));
  await client.publishAsync(topics.device(id, 'state'), JSON.stringify(deviceState(id, overrides)), { qos: 1, retain: true });
  await client.publishAsync(topics.device(id, 'status'), JSON.stringify({ online, at: new Date().toISOString() }), {
    qos: 1,
    retain: true,
  });
  await waitFor(`${id} known to the hub, online: ${online}`, async () => {
    const res = await http(hub.httpUrl, 'GET', `/api/v1/devices/${id}`, undefined, { authorization: `Bearer ${token}` });
    return res.status === 200 && (res.body as { online: boolean }).online === online;
  });
  return client;
}

beforeAll(async () => {
  hub = await startTestHub();
  cleanup.add('hub', () => hub.close());
  token = readFileSync(join(hub.dataDir, 'admin.key'), 'utf8').trim();
  await reportDevice('pi-1', true, { labels: { site: 'lab', 'example.com/role': 'gateway' } });
  await reportDevice('pi-2', false, { labels: { site: 'lab' } });
  const base = deviceState('pi-3');
  await reportDevice('pi-3', true, { labels: { site: 'roof' }, host: { ...base.host, arch: 'x86_64', agentVersion: '0.2.0' } });
}, 60_000);
afterAll(() => cleanup.run());

interface Inventory {
  _meta: { hostvars: Record<string, Record<string, unknown>> };
  all: { children: string[] };
  [group: string]: unknown;
}

describe('flotilla inventory', () => {
  it('lists devices in a group per label and online/offline, with their facts and a ProxyCommand without the token', SLOW, async () => {
    const result = await runCli(['inventory', '--list'], { env: { FLOTILLA_HUB: hub.httpUrl, FLOTILLA_TOKEN: token } });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const inventory = JSON.parse(result.stdout) as Inventory;
    expect(inventory.all.children).toEqual(['example_com_role_gateway', 'offline', 'online', 'site_lab', 'site_roof', 'ungrouped']);
    expect(inventory.site_lab).toEqual({ hosts: ['pi-1', 'pi-2'] });
    expect(inventory.site_roof).toEqual({ hosts: ['pi-3'] });
    expect(inventory.example_com_role_gateway).toEqual({ hosts: ['pi-1'] });
    expect(inventory.online).toEqual({ hosts: ['pi-1', 'pi-3'] });
    expect(inventory.offline).toEqual({ hosts: ['pi-2'] });
    expect(inventory._meta.hostvars['pi-3']).toMatchObject({
      ansible_host: 'pi-3',
      flotilla_labels: { site: 'roof' },
      flotilla_arch: 'x86_64',
      flotilla_agent_version: '0.2.0',
      flotilla_online: true,
    });
    expect(inventory._meta.hostvars['pi-2']).toMatchObject({
      flotilla_online: false,
      flotilla_arch: 'arm64',
      flotilla_agent_version: '0.1.0',
    });
    expect(result.stdout).not.toContain(token);
  });

  it("writes a ProxyCommand that runs this CLI against the same hub, as ssh's shell runs it", SLOW, async () => {
    const result = await runCli(['--hub', hub.httpUrl, 'inventory', '--host', 'pi-1'], { env: { FLOTILLA_TOKEN: token } });
    expect(result.code).toBe(0);
    const vars = JSON.parse(result.stdout) as { ansible_ssh_common_args: string };
    // Ansible splits ssh_common_args as shlex does; ssh hands the ProxyCommand to sh -c after replacing %h.
    const { stdout: split } = await run('python3', [
      '-c',
      'import json,shlex,sys; print(json.dumps(shlex.split(sys.argv[1])))',
      vars.ansible_ssh_common_args,
    ]);
    const [flag, option, ...rest] = JSON.parse(split) as string[];
    expect([flag, rest]).toEqual(['-o', []]);
    expect(option).toMatch(/^ProxyCommand=.* ssh-proxy %h 22$/);
    // The same command with `inventory --host` in place of `ssh-proxy`: it reaches this hub with no FLOTILLA_HUB set.
    const command = option!.replace(/^ProxyCommand=/, '').replace(/ ssh-proxy %h 22$/, ' inventory --host pi-3');
    const env: NodeJS.ProcessEnv = { ...process.env, FLOTILLA_TOKEN: token };
    delete env.FLOTILLA_HUB;
    const { stdout } = await run('sh', ['-c', command], { env, cwd: scratchDir('flotilla-proxy-cwd-') });
    expect(JSON.parse(stdout)).toMatchObject({ ansible_host: 'pi-3', flotilla_online: true });
  });

  it('exits 3 for --host of a device the hub does not know', SLOW, async () => {
    const result = await runCli(['inventory', '--host', 'nope'], { env: { FLOTILLA_HUB: hub.httpUrl, FLOTILLA_TOKEN: token } });
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('error:');
  });

  it('is read by ansible-inventory through the executable inventory file', SLOW, async () => {
    const ansibleHome = scratchDir('flotilla-ansible-');
    const env = {
      ...process.env,
      FLOTILLA_HUB: hub.httpUrl,
      FLOTILLA_TOKEN: token,
      HOME: ansibleHome,
      ANSIBLE_LOCAL_TEMP: join(ansibleHome, 'tmp'),
      ANSIBLE_INVENTORY_UNPARSED_FAILED: 'true',
    };
    const { stdout } = await run('ansible-inventory', ['-i', INVENTORY_FILE, '--list'], { env, timeout: 60_000 });
    const inventory = JSON.parse(stdout) as Inventory;
    expect(inventory.site_lab).toEqual({ hosts: ['pi-1', 'pi-2'] });
    expect(inventory.offline).toEqual({ hosts: ['pi-2'] });
    expect(inventory.online).toEqual({ hosts: ['pi-1', 'pi-3'] });
    expect(inventory._meta.hostvars['pi-1']).toMatchObject({
      ansible_host: 'pi-1',
      flotilla_labels: { site: 'lab', 'example.com/role': 'gateway' },
      flotilla_online: true,
    });
    expect(String(inventory._meta.hostvars['pi-1']?.ansible_ssh_common_args)).toContain(`--hub ${hub.httpUrl} ssh-proxy %h 22`);
    const { stdout: host } = await run('ansible-inventory', ['-i', INVENTORY_FILE, '--host', 'pi-2'], { env, timeout: 60_000 });
    expect(JSON.parse(host)).toMatchObject({ flotilla_online: false, ansible_host: 'pi-2' });
  });
});

/**
 * The log ledger's files: saved before each batch in a directory in RAM
 * (never the data dir while the agent runs), copied to the data dir at a
 * clean stop, the copy removed before the next agent's first batch, and the
 * data dir used instead when the RAM directory cannot be. Real files: the RAM
 * directory under /dev/shm (tmpfs) where it exists.
 */
import {
  chmodSync,
  chownSync,
  existsSync,
  type FSWatcher,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  watch,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultLedgerDir, isInRam, LEDGER_FILE_NAME, LedgerFiles } from '../../agent/telemetry/logs/ledger-files.js';
import { type LinePosition, ShipLedger } from '../../agent/telemetry/logs/log-cursor.js';

const p = (nanos: number, at: number): LinePosition => ({ nanos: BigInt(nanos), at });
const SHM = '/dev/shm';

describe('log ledger files', () => {
  let dataDir: string;
  let ramParent: string;
  let ramDir: string;
  let watcher: FSWatcher | undefined;

  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'flotilla-ledger-data-'));
    ramParent = mkdtempSync(join(existsSync(SHM) ? SHM : tmpdir(), 'flotilla-ledger-ram-'));
    ramDir = join(ramParent, 'ledger');
  });

  afterEach(() => {
    watcher?.close();
    watcher = undefined;
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(ramParent, { recursive: true, force: true });
  });

  const diskPath = () => join(dataDir, LEDGER_FILE_NAME);
  const files = () => new LedgerFiles({ diskPath: diskPath(), ramDir, removeRamDir: true, logger: pino({ level: 'silent' }) });

  /** A ledger after `batches` batches of one container, each handed in turn. */
  function ledgerAfter(batches: number): ShipLedger {
    const ledger = new ShipLedger();
    ledger.begin('c1', p(0, 0));
    for (let seq = 1; seq <= batches; seq++) ledger.handed(seq, new Map([['c1', { from: p(seq * 10, 1), to: p(seq * 10, 3) }]]));
    return ledger;
  }

  it.runIf(existsSync(SHM))(
    'saves before each batch in RAM and never touches the data dir while the agent runs (inotify sees nothing there)',
    async () => {
      const store = files();
      const events: string[] = [];
      watcher = watch(dataDir, (event, name) => events.push(`${event} ${name}`));
      for (let n = 1; n <= 200; n++) store.save(ledgerAfter(n).toJson());
      // inotify events arrive through the event loop: give them time to.
      await new Promise((r) => setTimeout(r, 200));
      expect(events).toEqual([]);
      expect(readdirSync(dataDir)).toEqual([]);
      expect(store.savingTo).toBe('ram');
      expect(isInRam(ramDir)).toBe(true);
      expect(statSync(ramDir).mode & 0o777).toBe(0o700);
      expect(statSync(join(ramDir, LEDGER_FILE_NAME)).mode & 0o777).toBe(0o600);
      // A new agent (same boot, after a kill -9) reads the last save.
      expect(files().load()).toEqual(ledgerAfter(200).toJson());
    },
  );

  it('makes the RAM directory again when it is removed under a running agent, and goes on saving there', () => {
    const store = files();
    store.save(ledgerAfter(1).toJson());
    rmSync(ramDir, { recursive: true });
    store.save(ledgerAfter(2).toJson());
    expect(store.savingTo).toBe('ram');
    expect(readdirSync(dataDir)).toEqual([]);
    expect(files().load()).toEqual(ledgerAfter(2).toJson());
  });

  it('a clean stop leaves one exact copy in the data dir and nothing in RAM; the next agent reads it and removes it before its first batch', () => {
    const store = files();
    store.save(ledgerAfter(3).toJson());
    store.persist(ledgerAfter(4).toJson());
    expect(readdirSync(dataDir)).toEqual([LEDGER_FILE_NAME]);
    expect(statSync(diskPath()).mode & 0o777).toBe(0o600);
    expect(existsSync(ramDir)).toBe(false);
    // A reboot: RAM is wiped (nothing was left there anyway).
    rmSync(ramParent, { recursive: true, force: true });
    mkdirSync(ramParent);
    const next = files();
    expect(next.load()).toEqual(ledgerAfter(4).toJson());
    next.save(ledgerAfter(5).toJson());
    // A power cut now must not hand the agent after it the copy of batch 4: batch 5 may be at the hub.
    expect(existsSync(diskPath())).toBe(false);
    rmSync(ramParent, { recursive: true, force: true });
    expect(files().load()).toBeUndefined();
  });

  it('prefers the data dir copy when both exist, and a data dir copy that cannot be read leaves the ledger unknown', () => {
    const store = files();
    store.save(ledgerAfter(2).toJson());
    // The data dir copy exists only while it is the newer (a clean stop, or saves there when RAM failed).
    writeFileSync(diskPath(), JSON.stringify(ledgerAfter(6).toJson()));
    expect(files().load()).toEqual(ledgerAfter(6).toJson());
    writeFileSync(diskPath(), JSON.stringify(ledgerAfter(6).toJson()).slice(0, 30));
    expect(files().load()).toBeUndefined();
  });

  it('saves in the data dir before each batch, exactly, when the RAM directory cannot be made or is not private to the agent', () => {
    // Not a directory: mkdir fails.
    writeFileSync(join(ramParent, 'ledger'), 'in the way');
    const store = files();
    store.save(ledgerAfter(1).toJson());
    expect(store.savingTo).toBe('data dir');
    store.save(ledgerAfter(2).toJson());
    expect(files().load()).toEqual(ledgerAfter(2).toJson());
    store.persist(ledgerAfter(3).toJson());
    expect(files().load()).toEqual(ledgerAfter(3).toJson());
  });

  it.runIf(process.getuid?.() === 0)('refuses a RAM directory another user owns (a shared tmpfs could hand it a forged ledger)', () => {
    mkdirSync(ramDir, { mode: 0o700 });
    writeFileSync(join(ramDir, LEDGER_FILE_NAME), JSON.stringify(ledgerAfter(9).toJson()));
    chownSync(ramDir, 12345, 12345);
    expect(files().load()).toBeUndefined();
    const store = files();
    store.save(ledgerAfter(1).toJson());
    expect(store.savingTo).toBe('data dir');
    expect(files().load()).toEqual(ledgerAfter(1).toJson());
  });

  it('does not read a RAM copy in a directory others can write to', () => {
    files().save(ledgerAfter(1).toJson());
    chmodSync(ramDir, 0o777);
    expect(files().load()).toBeUndefined();
    chmodSync(ramDir, 0o700);
    expect(files().load()).toEqual(ledgerAfter(1).toJson());
  });

  it('by default keys the RAM directory to the data dir and the device, under /dev/shm', () => {
    const a = defaultLedgerDir('/var/lib/flotilla-agent', 'dev-1', ramParent);
    expect(a).toMatch(new RegExp(`^${ramParent}/flotilla-agent-[0-9a-f]{16}$`));
    expect(defaultLedgerDir('/var/lib/flotilla-agent', 'dev-1', ramParent)).toBe(a);
    expect(defaultLedgerDir('/var/lib/flotilla-agent', 'dev-2', ramParent)).not.toBe(a);
    expect(defaultLedgerDir('/srv/agent', 'dev-1', ramParent)).not.toBe(a);
    expect(defaultLedgerDir('/var/lib/flotilla-agent', 'dev-1', join(ramParent, 'absent'))).toBeUndefined();
  });
});

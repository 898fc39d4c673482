/**
 * The device's download sums since its data dir was made (DownloadTotals in
 * the state report): bytes received, bytes layer reuse saved, bytes resent,
 * images completed; and the daily budget's day, so a restart does not give
 * the budget a fresh day. Kept in `<dataDir>/downloads.json`.
 *
 * Invariants:
 * - The file is replaced whole (written beside, then renamed over), so a
 *   reader or a power cut finds the old sums or the new, never a torn file;
 *   one that cannot be read starts the sums again, saying so.
 * - Written at most every PERSIST_INTERVAL_MS while bytes arrive, and at once
 *   when an image completes and on close: an SD card's writes are precious,
 *   and a crash loses at most a few seconds of counting, never a completion.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { DownloadTotals } from '../../shared/index.js';
import type { BudgetDay, BudgetState } from './daily-budget.js';

export const TOTALS_FILE = 'downloads.json';
export const PERSIST_INTERVAL_MS = 10_000;

interface Sums {
  bytes: number;
  reusedBytes: number;
  resentBytes: number;
  images: number;
  since: string;
}

interface PersistedTotals extends Sums {
  budget?: BudgetDay;
}

export interface DownloadTotalsOptions {
  dataDir: string;
  logger: Logger;
  now?: () => number;
  persistIntervalMs?: number;
}

export class DownloadTotalsFile {
  private sums: Sums;
  /** The budget's day as the file had it: DailyBudget counts on from it if it is still today. */
  readonly restoredBudget: BudgetDay | undefined;
  private budgetDay: (() => BudgetDay) | undefined;
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly path: string;
  private readonly now: () => number;
  private readonly log: Logger;

  constructor(private readonly options: DownloadTotalsOptions) {
    this.path = join(options.dataDir, TOTALS_FILE);
    this.now = options.now ?? Date.now;
    this.log = options.logger.child({ component: 'downloads' });
    const persisted = this.read();
    this.sums = persisted ?? { bytes: 0, reusedBytes: 0, resentBytes: 0, images: 0, since: new Date(this.now()).toISOString() };
    this.restoredBudget = persisted?.budget;
  }

  /** Where the budget's day is read when the file is written. */
  trackBudget(day: () => BudgetDay): void {
    this.budgetDay = day;
  }

  received(bytes: number): void {
    this.sums.bytes += bytes;
    this.soon();
  }

  resent(bytes: number): void {
    this.sums.resentBytes += bytes;
    this.soon();
  }

  /** An image is in the engine: `reusedBytes` of its layers were not downloaded. Written at once. */
  completed(reusedBytes: number): void {
    this.sums.images += 1;
    this.sums.reusedBytes += reusedBytes;
    this.dirty = true;
    this.write();
  }

  /** The budget counted bytes: written with the next write. */
  budgetCounted(): void {
    this.soon();
  }

  /** As the state report shows them. */
  report(rateLimit: number, budget: BudgetState | undefined): DownloadTotals {
    return {
      ...this.sums,
      ...(rateLimit > 0 ? { rateLimit } : {}),
      ...(budget ? { budget: { limit: budget.limit, used: budget.used, day: budget.day, resetsAt: budget.resetsAt.toISOString() } } : {}),
    };
  }

  /** Writes what is not written yet. */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.dirty) this.write();
  }

  private soon(): void {
    this.dirty = true;
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.write();
    }, this.options.persistIntervalMs ?? PERSIST_INTERVAL_MS);
    this.timer.unref();
  }

  private write(): void {
    if (!this.dirty) return;
    const content: PersistedTotals = { ...this.sums, ...(this.budgetDay ? { budget: this.budgetDay() } : {}) };
    const tmp = `${this.path}.tmp`;
    try {
      const fd = openSync(tmp, 'w', 0o600);
      try {
        writeSync(fd, `${JSON.stringify(content)}\n`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.path);
      this.dirty = false;
    } catch (err) {
      // The sums are a report, not state anything depends on: kept in memory, and written again with the next change.
      this.log.warn({ path: this.path, err: (err as Error).message }, 'cannot save the download totals');
    }
  }

  private read(): PersistedTotals | undefined {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.log.warn({ path: this.path, err: (err as Error).message }, 'cannot read the download totals; counting from zero');
      }
      return undefined;
    }
    const parsed = parseTotals(text);
    if (!parsed) this.log.warn({ path: this.path }, 'the download totals file is not what this agent writes; counting from zero');
    return parsed;
  }
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function parseTotals(text: string): PersistedTotals | undefined {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { bytes, reusedBytes, resentBytes, images, since, budget } = value;
  if (!isCount(bytes) || !isCount(reusedBytes) || !isCount(resentBytes) || !isCount(images)) return undefined;
  if (typeof since !== 'string' || Number.isNaN(Date.parse(since))) return undefined;
  const day = budget as Partial<BudgetDay> | undefined;
  const budgetDay = day && typeof day.day === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(day.day) && isCount(day.used) ? day : undefined;
  return {
    bytes,
    reusedBytes,
    resentBytes,
    images,
    since: new Date(since).toISOString(),
    ...(budgetDay ? { budget: { day: budgetDay.day!, used: budgetDay.used! } } : {}),
  };
}

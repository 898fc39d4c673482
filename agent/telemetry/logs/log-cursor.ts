/**
 * Where each container's log was shipped up to, so that an agent that stops
 * (SIGTERM, kill -9, an upgrade, a reboot) resumes every container's log from
 * the engine just after the last line it shipped: the hub stores every line
 * once, including those printed while no agent ran. Pure: no I/O.
 *
 * A line's position is its engine timestamp plus how many lines of that
 * container carry exactly that timestamp up to it (lines can share one), so
 * a follow resumed at the timestamp (the engine's `since` is inclusive) skips
 * exactly the lines already counted.
 *
 * When is a line shipped? The hub deduplicates by `(device, seq)`, so a batch
 * sent again under its own seq is harmless, and a line sent again under a new
 * seq is a duplicate. An outbox acknowledgement cannot be the durable record:
 * online, a batch is acknowledged within milliseconds and never written
 * (the outbox spares the flash), so after a kill -9 the agent would not know
 * which of its last batches the hub has, and would either resend them under
 * new seqs (duplicates) or skip them (a gap). Hence a write-ahead record:
 * before a batch leaves the collector, its seq and, per container, the
 * positions of its first and last line are recorded (`handed`) and saved
 * where the agent's death cannot lose it: a file in RAM, which a kill -9
 * leaves in the kernel without writing the SD card (ledger-files.ts says
 * what a reboot and a power cut mean). After a restart every batch not
 * known to be settled (acknowledged, written to the outbox file, or dropped
 * by the outbox and reported) is read again from the engine and sent again
 * under its recorded seq: the hub keeps
 * whichever copy it gets first. A settlement need not be saved at once for
 * that to hold (a settled batch sent again is ignored), so it is saved
 * lazily; only `handed` must reach the file before the batch is published.
 */

/** The position of a container's log line: its timestamp and its rank among the lines sharing that timestamp (from 1). */
export interface LinePosition {
  nanos: bigint;
  at: number;
}

/** One container's lines in one batch: from the first to the last, both included. */
export interface LineRange {
  from: LinePosition;
  to: LinePosition;
}

export interface BatchRecord {
  seq: number;
  /** Per container id. */
  ranges: Map<string, LineRange>;
  settled: boolean;
}

/** A batch to send again after a restart, under its recorded seq. */
export interface Replay {
  seq: number;
  ranges: Map<string, LineRange>;
}

export interface ResumePlan {
  /** Per container id: the last line shipped or recorded; following resumes after it. */
  after: Map<string, LinePosition>;
  /** Recorded batches not known to have been settled, oldest first. */
  replays: Replay[];
}

export function comparePositions(a: LinePosition, b: LinePosition): number {
  if (a.nanos !== b.nanos) return a.nanos < b.nanos ? -1 : 1;
  return a.at - b.at;
}

/** Counts positions along one container's log as the engine returns it (in order). */
export class PositionCounter {
  private last: LinePosition | undefined;

  constructor(start?: LinePosition) {
    this.last = start;
  }

  /** The position of the next line, stamped `nanos`. */
  next(nanos: bigint): LinePosition {
    const at = this.last !== undefined && this.last.nanos === nanos ? this.last.at + 1 : 1;
    this.last = { nanos, at };
    return this.last;
  }
}

/** The file's shape: bigints as decimal strings. */
export interface LedgerJson {
  v: 1;
  shipped: Record<string, [string, number]>;
  batches: { seq: number; settled: boolean; ranges: Record<string, [string, number, string, number]> }[];
}

export class ShipLedger {
  /** Per container id: every line up to here is settled (with every earlier batch). */
  private readonly shipped = new Map<string, LinePosition>();
  /** Handed batches, oldest first, until they and every older one are settled. */
  private batches: BatchRecord[] = [];

  static fromJson(json: LedgerJson): ShipLedger {
    const ledger = new ShipLedger();
    for (const [id, [nanos, at]] of Object.entries(json.shipped)) ledger.shipped.set(id, { nanos: BigInt(nanos), at });
    for (const b of json.batches) {
      const ranges = new Map<string, LineRange>();
      for (const [id, [fn, fa, tn, ta]] of Object.entries(b.ranges)) {
        ranges.set(id, { from: { nanos: BigInt(fn), at: fa }, to: { nanos: BigInt(tn), at: ta } });
      }
      ledger.batches.push({ seq: b.seq, ranges, settled: b.settled });
    }
    return ledger;
  }

  /** Batches recorded and not yet dropped from the ledger (for tests and diagnostics). */
  get recorded(): number {
    return this.batches.length;
  }

  /** Where following a container began (nothing before it is this agent's to send), unless the ledger knows more. */
  begin(id: string, position: LinePosition): void {
    if (!this.shipped.has(id)) this.shipped.set(id, position);
  }

  /** A batch about to be published. */
  handed(seq: number, ranges: Map<string, LineRange>): void {
    if (ranges.size === 0) return;
    this.batches.push({ seq, ranges, settled: false });
  }

  /** The outbox no longer needs the engine's copy of this batch; false for a seq the ledger does not hold. */
  settled(seq: number): boolean {
    const batch = this.batches.find((b) => b.seq === seq);
    if (!batch || batch.settled) return false;
    batch.settled = true;
    let done = 0;
    for (const b of this.batches) {
      if (!b.settled) break;
      for (const [id, range] of b.ranges) this.advance(id, range.to);
      done++;
    }
    if (done > 0) this.batches = this.batches.slice(done);
    return true;
  }

  /** Forgets containers that no longer exist (their logs went with them). */
  retain(ids: ReadonlySet<string>): void {
    for (const id of this.shipped.keys()) if (!ids.has(id)) this.shipped.delete(id);
  }

  /** Where to resume and what to send again, as a new agent reading this ledger would. */
  resumePlan(): ResumePlan {
    const after = new Map(this.shipped);
    const replays: Replay[] = [];
    for (const b of this.batches) {
      for (const [id, range] of b.ranges) {
        const known = after.get(id);
        if (!known || comparePositions(range.to, known) > 0) after.set(id, range.to);
      }
      if (!b.settled) replays.push({ seq: b.seq, ranges: b.ranges });
    }
    return { after, replays };
  }

  toJson(): LedgerJson {
    const shipped: LedgerJson['shipped'] = {};
    for (const [id, p] of this.shipped) shipped[id] = [p.nanos.toString(), p.at];
    return {
      v: 1,
      shipped,
      batches: this.batches.map((b) => {
        const ranges: LedgerJson['batches'][number]['ranges'] = {};
        for (const [id, r] of b.ranges) ranges[id] = [r.from.nanos.toString(), r.from.at, r.to.nanos.toString(), r.to.at];
        return { seq: b.seq, settled: b.settled, ranges };
      }),
    };
  }

  private advance(id: string, to: LinePosition): void {
    const known = this.shipped.get(id);
    if (!known || comparePositions(to, known) > 0) this.shipped.set(id, to);
  }
}

/** Per container, the first and last positions among a batch's lines (given in order). */
export function rangesOf(positions: Iterable<{ id: string; position: LinePosition }>): Map<string, LineRange> {
  const ranges = new Map<string, LineRange>();
  for (const { id, position } of positions) {
    const r = ranges.get(id);
    if (!r) ranges.set(id, { from: position, to: position });
    else if (comparePositions(position, r.to) > 0) r.to = position;
  }
  return ranges;
}

/** Where a line stands relative to a range: before it, in it, or past it. */
export function placeInRange(position: LinePosition, range: LineRange): 'before' | 'in' | 'after' {
  if (comparePositions(position, range.from) < 0) return 'before';
  if (comparePositions(position, range.to) > 0) return 'after';
  return 'in';
}

/** A log batch's seq, read from its payload as the link queued it (`{"seq":…`), without parsing the lines. */
export function batchSeqOf(payload: Buffer): number | undefined {
  const m = /^\{"seq":(\d+)[,}]/.exec(payload.subarray(0, 32).toString('latin1'));
  return m ? Number(m[1]) : undefined;
}

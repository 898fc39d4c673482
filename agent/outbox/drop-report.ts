/** One line an operator can read: what the outbox lost, of which class, and why. */
import { formatBytes } from '../../shared/index.js';
import { OUTBOX_CLASSES } from './classes.js';
import type { DropCounts, DropReason } from './outbox.js';

const REASONS: Record<DropReason, string> = { full: 'outbox full', expired: 'expired', unreadable: 'unreadable on disk' };

export function describeDrops(drops: DropCounts): string {
  const parts: string[] = [];
  for (const reason of ['full', 'expired', 'unreadable'] as const) {
    const counts = OUTBOX_CLASSES.filter((cls) => drops[cls][reason].messages > 0).map(
      (cls) => `${drops[cls][reason].messages} ${cls} (${formatBytes(drops[cls][reason].bytes)})`,
    );
    if (counts.length > 0) parts.push(`${REASONS[reason]}: ${counts.join(', ')}`);
  }
  return `dropped undelivered messages, ${parts.join('; ')}`;
}

/**
 * Where desired documents enter the agent: the one it persisted, restored
 * at start, and every one the link receives, each past the guard
 * (desired-guard.ts) before the reconciler sees it. Refusals become
 * rate-limited `desired-rejected` events (rejection-events.ts).
 *
 * Invariant: `current` is the document the agent acts on — verified (with a
 * pinned key), the newest it accepted — and the one in the local store,
 * unless saving it failed (a full data dir): then it is acted on all the
 * same, and the error says that a restart would go back to the one saved before.
 */
import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import type { Closer } from '../../shared/closer.js';
import type { DesiredState } from '../../shared/index.js';
import type { AgentConfig } from '../config.js';
import { checkDesired, checkRestored } from '../desired-guard.js';
import type { LocalStore } from '../local-store.js';
import type { Reconciler } from '../reconcile/reconciler.js';
import { RejectionEvents } from '../rejection-events.js';
import { dataDirError } from '../startup-checks.js';
import type { Uplink } from './uplink.js';

export interface DesiredIntakeDeps {
  store: LocalStore;
  reconciler: Reconciler;
  uplink: Uplink;
  hubKey: KeyObject | undefined;
  logger: Logger;
  /** Every document accepted (restored or received): the agent's own upgrade follows its `agent` section. */
  onAccepted?: (desired: DesiredState) => void;
}

export class DesiredIntake {
  private accepted: DesiredState | undefined;
  private readonly rejections: RejectionEvents;

  constructor(
    private readonly config: AgentConfig,
    private readonly deps: DesiredIntakeDeps,
  ) {
    this.rejections = new RejectionEvents({
      emit: (message) => deps.uplink.event({ type: 'desired-rejected', message }),
      logger: deps.logger.child({ component: 'desired' }),
      intervalMs: config.rejectionEventIntervalMs,
    });
  }

  get current(): DesiredState | undefined {
    return this.accepted;
  }

  /** Hands the reconciler the persisted document, unless it is another device's or does not verify. */
  restore(): void {
    const { store, reconciler, hubKey, logger } = this.deps;
    const restored = store.loadDesired();
    if (restored.problem) logger.warn({ reason: restored.problem }, 'ignoring unreadable persisted desired state');
    const desired = restored.desired;
    if (!desired) return;
    const problem = checkRestored(desired, hubKey);
    if (desired.deviceId !== this.config.deviceId) {
      logger.warn({ persistedFor: desired.deviceId }, 'ignoring persisted desired state of another device id (data dir reused?)');
    } else if (problem) {
      // Nothing is removed until a desired state is known: the running apps stay as they are until the hub's arrives.
      logger.warn(
        { revision: desired.revision, reason: problem },
        'ignoring persisted desired state that does not verify with the pinned hub key (altered on disk, or saved before the key was pinned)',
      );
    } else {
      logger.info({ revision: desired.revision }, 'restored desired state from disk');
      reconciler.setDesired(desired);
      this.accepted = desired;
      this.deps.onAccepted?.(desired);
    }
  }

  /** A document from the link: accepted (persisted, handed on), ignored, or refused and reported. */
  onDesired(desired: DesiredState): void {
    const { reconciler, hubKey, logger } = this.deps;
    const verdict = checkDesired(desired, this.accepted, hubKey, this.config.deviceId);
    // Refused: not handed to the reconciler, so the running containers stay exactly as they are.
    if (verdict.action === 'refuse') {
      this.rejections.refused(verdict.reason, verdict.message);
      return;
    }
    if (verdict.action === 'ignore' || !reconciler.setDesired(desired)) {
      logger.debug({ revision: desired.revision, current: reconciler.desiredRevision }, 'ignoring stale desired state');
      return;
    }
    this.accepted = desired;
    this.save(desired);
    this.deps.onAccepted?.(desired);
    logger.info({ revision: desired.revision, apps: desired.apps.map((a) => `${a.name}@${a.revision}`) }, 'new desired state');
  }

  close(): void {
    this.rejections.close();
  }

  private save(desired: DesiredState): void {
    try {
      this.deps.store.saveDesired(desired);
    } catch (err) {
      const problem = dataDirError(err, this.config.dataDir)?.message ?? `saving the desired state in ${this.config.dataDir} failed`;
      this.deps.logger.error(
        { revision: desired.revision, err: (err as Error).message },
        `${problem}. The agent acts on revision ${desired.revision} without saving it: restarted before it is saved, it goes back to the one saved before`,
      );
    }
  }
}

/** The intake with the persisted document restored; its rate-limit timers stop on close. */
export function openDesiredIntake(config: AgentConfig, deps: DesiredIntakeDeps, closer: Closer): DesiredIntake {
  const intake = new DesiredIntake(config, deps);
  closer.add('desired-state intake', () => intake.close());
  intake.restore();
  return intake;
}

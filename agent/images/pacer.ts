/**
 * The one Pacer every image download goes through: the daily budget
 * (daily-budget.ts), then the downlink rate (rate-limit.ts). A chunk passes
 * once both let it. The budget comes first, so a download held until the
 * next day does not also spend the rate's tokens meanwhile.
 */
import type { Pacer } from './types.js';

/** Lets nothing wait: no budget and no rate limit. */
export const UNPACED: Pacer = { take: async () => undefined };

/** A Pacer that passes bytes once each of `pacers` has, in order. */
export function allOf(pacers: readonly (Pacer | undefined)[]): Pacer {
  const chain = pacers.filter((pacer): pacer is Pacer => pacer !== undefined);
  if (chain.length === 0) return UNPACED;
  if (chain.length === 1) return chain[0]!;
  return {
    async take(bytes, signal) {
      for (const pacer of chain) await pacer.take(bytes, signal);
    },
  };
}

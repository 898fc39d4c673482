/**
 * Runs `task` for every item, at most `limit` at a time: a bulk edit of a
 * thousand devices is a thousand requests, and the hub (and a plant network)
 * should see a few at once, not all of them. Every item is tried; failures
 * are collected, never thrown.
 */
export interface EachProgress<T> {
  done: number;
  total: number;
  failures: { item: T; error: unknown }[];
}

export async function runEach<T>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<unknown>,
  onProgress: (progress: EachProgress<T>) => void,
): Promise<EachProgress<T>> {
  const progress: EachProgress<T> = { done: 0, total: items.length, failures: [] };
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      try {
        await task(item);
      } catch (error) {
        progress.failures.push({ item, error });
      }
      progress.done++;
      onProgress({ ...progress, failures: [...progress.failures] });
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return progress;
}

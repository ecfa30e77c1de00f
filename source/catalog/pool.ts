/**
 * Bounded concurrency for the catalog's file-system calls: a listing of 1,000 sets awaited one call
 * after another spends its time waiting on the thread pool; a few dozen in flight keep it busy
 * without opening thousands of descriptors at once.
 */

/** How many sets (or files) a listing works on at once. */
export const LIST_CONCURRENCY = 32;

/** `fn` over `items` with at most `limit` calls in flight; results in the order of `items`. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      out[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

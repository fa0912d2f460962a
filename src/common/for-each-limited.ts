// Runs an async step over items with at most `limit` in flight: R2 and S3 latency hides behind parallel reads,
// while a request's connection limit (6 in Workers) and the reader's memory stay bounded.
export async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

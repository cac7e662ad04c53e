/** Helpers of the security suites (issue 5). */

/** Runs `work` over `items` with at most `concurrency` at once; results in input order. */
export async function inBatches<T, R>(
  items: readonly T[],
  concurrency: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) {
      results[i] = await work(items[i], i);
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, worker),
  );
  return results;
}

/** The scanner pattern SECURITY.md documents, for a given checksum-format prefix. */
export function scannerPattern(prefix = 'knox_'): RegExp {
  const escaped = prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`\\b${escaped}[0-9A-Za-z]{49}\\b`, 'g');
}

/** Every occurrence of `needle` in any string reachable from `value` (keys too). */
export function findSecret(value: unknown, needle: string): string[] {
  const hits: string[] = [];
  const seen = new Set<unknown>();
  const walk = (node: unknown, path: string): void => {
    if (typeof node === 'string') {
      if (node.includes(needle)) hits.push(path);
      return;
    }
    if (Buffer.isBuffer(node)) {
      if (node.toString('latin1').includes(needle)) hits.push(path);
      return;
    }
    if (!node || typeof node !== 'object' || seen.has(node)) return;
    seen.add(node);
    for (const [key, child] of Object.entries(node)) {
      if (key.includes(needle)) hits.push(`${path}[key]`);
      walk(child, `${path}.${key}`);
    }
  };
  walk(value, '$');
  return hits;
}

import http from 'node:http';

export interface RequestSpec {
  method: 'GET' | 'POST';
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface LoadResult {
  /** Wall time from the first request sent to the last response read. */
  elapsedMs: number;
  /** Requests answered. */
  requests: number;
  /** Latency of every request, in ms, in the order they were answered. */
  latenciesMs: Float64Array;
}

/**
 * Sends requests, `concurrency` at a time, over a keep-alive agent — `count` of them, or as many
 * as fit in `durationMs` — and checks that every response has the expected status (a benchmark
 * of the wrong answer is worthless).
 */
export async function runLoad(options: {
  agent: http.Agent;
  port: number;
  concurrency: number;
  count?: number;
  durationMs?: number;
  expectStatus: number;
  next: (index: number) => RequestSpec;
}): Promise<LoadResult> {
  const { agent, port, concurrency, expectStatus, next } = options;
  const count = options.count ?? Number.POSITIVE_INFINITY;
  const latencies: number[] = [];
  let issued = 0;
  let deadline = Number.POSITIVE_INFINITY;
  const worker = async (): Promise<void> => {
    while (issued < count && performance.now() < deadline) {
      const index = issued++;
      const spec = next(index);
      const sent = process.hrtime.bigint();
      const { status, body } = await send(agent, port, spec);
      latencies.push(Number(process.hrtime.bigint() - sent) / 1e6);
      if (status !== expectStatus) {
        throw new Error(
          `${spec.method} ${spec.path}: expected ${expectStatus}, got ${status} ${body.slice(0, 300)}`,
        );
      }
    }
  };
  const started = process.hrtime.bigint();
  if (options.durationMs !== undefined) {
    deadline = performance.now() + options.durationMs;
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  return {
    elapsedMs,
    requests: latencies.length,
    latenciesMs: Float64Array.from(latencies),
  };
}

export function send(
  agent: http.Agent,
  port: number,
  spec: RequestSpec,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...spec.headers };
    if (spec.body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(spec.body);
    }
    const request = http.request(
      {
        agent,
        host: '127.0.0.1',
        port,
        method: spec.method,
        path: spec.path,
        headers,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      },
    );
    request.on('error', reject);
    request.end(spec.body);
  });
}

/** The value at quantile `q` (nearest rank) of ascending-sorted `sorted`. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) {
    return NaN;
  }
  const rank = Math.ceil(q * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))];
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2
    ? sorted[middle]
    : (sorted[middle - 1] + sorted[middle]) / 2;
}

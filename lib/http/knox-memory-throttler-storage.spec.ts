import { afterEach, describe, expect, it, jest } from '@jest/globals';
import fc from 'fast-check';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { KnoxMemoryThrottlerStorage } from './knox-memory-throttler-storage.js';
import { createDefaultThrottlerStorage } from './knox-login-throttler.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface KeyConfig {
  ttl: number;
  limit: number;
  block: number;
}
interface Scenario {
  keys: Record<string, KeyConfig>;
  steps: { advance: number; key: string }[];
}

/** Runs the scenarios against a storage, with Date.now driven by the steps. */
async function play(
  scenarios: Scenario[],
  make: () => {
    increment: KnoxMemoryThrottlerStorage['increment'];
    onApplicationShutdown?: () => void;
  },
): Promise<unknown[][]> {
  let now = Date.UTC(2030, 0, 1);
  const spy = jest.spyOn(Date, 'now').mockImplementation(() => now);
  try {
    const out: unknown[][] = [];
    for (const scenario of scenarios) {
      const storage = make();
      const answers: unknown[] = [];
      for (const step of scenario.steps) {
        now += step.advance;
        const { ttl, limit, block } = scenario.keys[step.key];
        answers.push(
          await storage.increment(step.key, ttl, limit, block, 'knox-login'),
        );
      }
      storage.onApplicationShutdown?.();
      out.push(answers);
    }
    return out;
  } finally {
    spy.mockRestore();
  }
}

/**
 * The same scenarios against @nestjs/throttler's ThrottlerStorageService, in a plain Node process
 * (Jest's sandbox cannot load it on Node < 24.9; Node itself can: that is the runtime path).
 */
function playReal(scenarios: Scenario[]): unknown[][] {
  const program = `
    import { createRequire } from 'node:module';
    const require = createRequire(${JSON.stringify(ROOT + 'package.json')});
    const { ThrottlerStorageService } = require('@nestjs/throttler');
    const scenarios = JSON.parse(process.argv[1]);
    let now = Date.UTC(2030, 0, 1);
    Date.now = () => now;
    const out = [];
    for (const scenario of scenarios) {
      const storage = new ThrottlerStorageService();
      const answers = [];
      for (const step of scenario.steps) {
        now += step.advance;
        const { ttl, limit, block } = scenario.keys[step.key];
        answers.push(await storage.increment(step.key, ttl, limit, block, 'knox-login'));
      }
      storage.onApplicationShutdown();
      out.push(answers);
    }
    process.stdout.write(JSON.stringify(out));
  `;
  const stdout = execFileSync(
    process.execPath,
    ['--input-type=module', '-e', program, JSON.stringify(scenarios)],
    { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  return JSON.parse(stdout) as unknown[][];
}

// Blocks of any positive length, the window's own (what knox passes) among them: the storage
// requires blockDuration > 0 (the real one's separate no-block path is never used by knox).
const keyConfig: fc.Arbitrary<KeyConfig> = fc
  .record({
    ttl: fc.constantFrom(1_000, 5_000, 60_000),
    limit: fc.integer({ min: 1, max: 5 }),
    block: fc.constantFrom(1, 1_000, 5_000, 60_000, 0),
  })
  .map(({ ttl, limit, block }) => ({
    ttl,
    limit,
    block: block === 0 ? ttl : block,
  }));

const scenario: fc.Arbitrary<Scenario> = fc.record({
  keys: fc.record({ a: keyConfig, b: keyConfig }),
  steps: fc.array(
    fc.record({
      advance: fc.oneof(
        fc.constant(0),
        fc.integer({ min: 0, max: 1_500 }),
        fc.integer({ min: 0, max: 70_000 }),
      ),
      key: fc.constantFrom('a', 'b'),
    }),
    { minLength: 1, maxLength: 40 },
  ),
});

describe('KnoxMemoryThrottlerStorage', () => {
  afterEach(() => {
    jest.restoreAllMocks();
  });

  it("answers exactly as @nestjs/throttler's ThrottlerStorageService on the same hits (200 random scenarios)", async () => {
    const scenarios = fc.sample(scenario, { numRuns: 200, seed: 20301 });
    scenarios.push({
      keys: {
        a: { ttl: 60_000, limit: 10, block: 60_000 },
        b: { ttl: 60_000, limit: 30, block: 60_000 },
      },
      steps: [
        ...Array.from({ length: 12 }, () => ({ advance: 1_000, key: 'a' })),
        { advance: 59_000, key: 'a' },
        { advance: 1_000, key: 'a' },
        ...Array.from({ length: 31 }, () => ({ advance: 0, key: 'b' })),
      ],
    });
    const real = playReal(scenarios);
    const ours = await play(scenarios, () => new KnoxMemoryThrottlerStorage());
    expect(JSON.parse(JSON.stringify(ours))).toEqual(real);
  });

  it('blocks past the limit for the block duration, then counts afresh', async () => {
    const [answers] = await play(
      [
        {
          keys: { a: { ttl: 60_000, limit: 2, block: 60_000 } },
          steps: [
            { advance: 0, key: 'a' },
            { advance: 0, key: 'a' },
            { advance: 0, key: 'a' },
            { advance: 59_000, key: 'a' },
            { advance: 1_000, key: 'a' },
          ],
        },
      ],
      () => new KnoxMemoryThrottlerStorage(),
    );
    expect(
      (
        answers as {
          totalHits: number;
          isBlocked: boolean;
          timeToBlockExpire: number;
        }[]
      ).map((r) => [r.totalHits, r.isBlocked, r.timeToBlockExpire]),
    ).toEqual([
      [1, false, expect.any(Number)],
      [2, false, expect.any(Number)],
      [3, true, 60],
      [3, true, 1],
      [1, false, 0],
    ]);
  });

  it('is the default storage of the login throttle, with the cap of the options', async () => {
    const storage = createDefaultThrottlerStorage(7);
    expect(storage).toBeInstanceOf(KnoxMemoryThrottlerStorage);
    const memory = storage as KnoxMemoryThrottlerStorage;
    for (let i = 0; i < 50; i++) {
      await memory.increment(`k${i}`, 60_000, 10, 60_000, 'knox-login');
    }
    expect(memory.size).toBe(7);
    memory.onApplicationShutdown();
    expect(memory.size).toBe(0);
  });
});

describe('KnoxMemoryThrottlerStorage: the cap on keys', () => {
  afterEach(() => {
    jest.restoreAllMocks();
  });

  const hit = (storage: KnoxMemoryThrottlerStorage, key: string) =>
    storage.increment(key, 60_000, 5, 60_000, 'knox-login');

  it('holds 100 000 keys by default, and never more under a spray of distinct keys', async () => {
    const storage = new KnoxMemoryThrottlerStorage();
    try {
      for (let i = 0; i < 130_000; i++) {
        await hit(storage, `user:${i}`);
        if (i % 10_000 === 0) {
          expect(storage.size).toBeLessThanOrEqual(100_000);
        }
      }
      expect(storage.size).toBe(100_000);
    } finally {
      storage.onApplicationShutdown();
    }
  });

  it('stays at its cap whatever the mix of new and repeated keys', async () => {
    const storage = new KnoxMemoryThrottlerStorage({ maxKeys: 50 });
    try {
      const keys = fc.sample(fc.integer({ min: 0, max: 400 }), {
        numRuns: 5_000,
        seed: 8,
      });
      const distinct = new Set<number>();
      for (const key of keys) {
        await hit(storage, `ip:${key}`);
        distinct.add(key);
        expect(storage.size).toBe(Math.min(50, distinct.size));
      }
    } finally {
      storage.onApplicationShutdown();
    }
  });

  it('evicts the key counted least recently first, which then counts afresh', async () => {
    const storage = new KnoxMemoryThrottlerStorage({ maxKeys: 3 });
    try {
      await hit(storage, 'a');
      await hit(storage, 'a');
      await hit(storage, 'b');
      await hit(storage, 'c');
      // 'a' was counted again after 'b': 'b' is now the oldest.
      await hit(storage, 'a');
      await hit(storage, 'd');
      expect(storage.size).toBe(3);
      expect((await hit(storage, 'a')).totalHits).toBe(4);
      expect((await hit(storage, 'c')).totalHits).toBe(2);
      expect((await hit(storage, 'd')).totalHits).toBe(2);
      // 'b' was evicted: its count starts again, and takes the place of the oldest ('a').
      expect((await hit(storage, 'b')).totalHits).toBe(1);
      expect((await hit(storage, 'a')).totalHits).toBe(1);
    } finally {
      storage.onApplicationShutdown();
    }
  });
});

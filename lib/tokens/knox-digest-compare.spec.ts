/**
 * Issue 23, test strength (a): a digest must be compared with `crypto.timingSafeEqual`, never
 * with `===` (an earlier planted-bug run swapped one for the other and no test noticed). The
 * comparison is pinned two ways: `timingSafeEqual` is spied on (the module is mocked before the
 * library loads) and must see every comparison `digestsEqual` and `matchDigest` make, with no
 * early exit; and no file of `lib/` compares a stored digest with `===` / `!==`.
 */
import { describe, expect, it, jest } from '@jest/globals';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const actual = await import('node:crypto');
const timingSafeEqual = jest.fn(actual.timingSafeEqual);
jest.unstable_mockModule('node:crypto', () => ({
  ...actual,
  default: { ...actual, timingSafeEqual },
  timingSafeEqual,
}));
const { digestToken, digestsEqual } = await import('./knox-token-format.js');
const { matchDigest } = await import('./knox-legacy-digests.js');

const LIB = join(dirname(fileURLToPath(import.meta.url)), '..');

describe('digests are compared in constant time', () => {
  it('digestsEqual goes through crypto.timingSafeEqual with both digests', () => {
    const a = digestToken('a'.repeat(64));
    const b = digestToken('b'.repeat(64));
    timingSafeEqual.mockClear();
    expect(digestsEqual(a, a)).toBe(true);
    expect(digestsEqual(a, b)).toBe(false);
    expect(timingSafeEqual).toHaveBeenCalledTimes(2);
    const [left, right] = timingSafeEqual.mock.calls[1] as [Buffer, Buffer];
    expect([left.toString(), right.toString()]).toEqual([a, b]);
  });

  it('matchDigest compares every row with every digest through it, found or not', () => {
    const current = digestToken('c'.repeat(64));
    const legacy = [digestToken('l1'), digestToken('l2')];
    const rows = [{ digest: legacy[1] }, { digest: current }];
    for (const [found, expected] of [
      [rows, rows[1]],
      [[rows[0]], rows[0]],
      [[{ digest: digestToken('other') }], undefined],
    ] as const) {
      timingSafeEqual.mockClear();
      expect(matchDigest(found, current, legacy)).toBe(expected);
      // No early exit: each row against the current digest and each legacy one.
      expect(timingSafeEqual).toHaveBeenCalledTimes(found.length * 3);
    }
  });

  it('no file of lib/ compares a stored digest with === or !==', () => {
    const offending: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) {
          walk(path);
        } else if (name.endsWith('.ts') && !name.endsWith('.spec.ts')) {
          readFileSync(path, 'utf8')
            .split('\n')
            .forEach((line, i) => {
              if (
                /\.digest\s*[!=]==(?!\s*['"])|[!=]==\s*[\w.]*\.digest\b|digestToken\([^)]*\)\s*[!=]==|[!=]==\s*digestToken\(/.test(
                  line,
                )
              ) {
                offending.push(
                  `${relative(LIB, path)}:${i + 1}: ${line.trim()}`,
                );
              }
            });
        }
      }
    };
    walk(LIB);
    expect(offending).toEqual([]);
  });
});

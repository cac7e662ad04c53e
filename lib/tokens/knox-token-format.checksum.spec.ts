import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { crc32 } from 'node:zlib';
import {
  CHECKSUM_LENGTH,
  CHECKSUM_RANDOM_LENGTH,
  checksumOf,
  generateToken,
  isChecksumPrefix,
  isWellFormedToken,
  toBase62,
} from './knox-token-format.js';

const LENGTH = 64;
const MAX_PREFIX = 10;
const wellFormed = (token: string) =>
  isWellFormedToken(token, LENGTH, MAX_PREFIX);

/** The scanner pattern documented in SECURITY.md, for the default prefix. */
const SCANNER = /\bknox_[0-9A-Za-z]{49}\b/g;
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const base62Char = fc.constantFrom(...BASE62);

/** An independent base62 (plain Number arithmetic) to check the library's against. */
function base62OfNumber(value: number, width: number): string {
  let out = '';
  for (let rest = value; rest > 0; rest = Math.floor(rest / 62)) {
    out = BASE62[rest % 62] + out;
  }
  return out.padStart(width, '0');
}

describe('checksum token format', () => {
  it('is prefix + 43 base62 random characters + a 6-character base62 CRC32 of everything before', () => {
    const token = generateToken('checksum', 'knox_', LENGTH);
    expect(token).toMatch(/^knox_[0-9A-Za-z]{49}$/);
    const head = token.slice(0, -CHECKSUM_LENGTH);
    expect(head).toHaveLength(5 + CHECKSUM_RANDOM_LENGTH);
    expect(token.slice(-CHECKSUM_LENGTH)).toBe(
      base62OfNumber(crc32(head), CHECKSUM_LENGTH),
    );
    expect(checksumOf(head)).toBe(token.slice(-CHECKSUM_LENGTH));
  });

  it('carries at least 256 random bits: 62^43 > 2^256 and the largest value fits', () => {
    expect(62n ** 43n > 2n ** 256n).toBe(true);
    expect(toBase62(2n ** 256n - 1n, CHECKSUM_RANDOM_LENGTH)).toHaveLength(43);
    expect(() => toBase62(62n ** 43n, CHECKSUM_RANDOM_LENGTH)).toThrow(
      RangeError,
    );
    const tokens = new Set(
      Array.from({ length: 2000 }, () =>
        generateToken('checksum', 'knox_', LENGTH),
      ),
    );
    expect(tokens.size).toBe(2000);
  });

  it('is found by the documented scanner regex, in text, and only whole', () => {
    const tokens = Array.from({ length: 200 }, () =>
      generateToken('checksum', 'knox_', LENGTH),
    );
    const text = tokens
      .map((token, i) => `line ${i}: export API_TOKEN=${token}; "${token}"`)
      .join('\n');
    const found = text.match(SCANNER) ?? [];
    expect(found).toEqual(tokens.flatMap((token) => [token, token]));
    // One character more or less is not a token.
    expect(`x ${tokens[0]}a y`.match(SCANNER)).toBeNull();
    expect(`x ${tokens[0].slice(0, -1)} y`.match(SCANNER)).toBeNull();
  });

  it('is well formed, and so are tokens with other valid prefixes', () => {
    for (const prefix of [
      'knox_',
      'myapp_',
      'ab_c_',
      'x-y.z!_',
      'abcdefghi_',
    ]) {
      const token = generateToken('checksum', prefix, LENGTH);
      expect(wellFormed(token)).toBe(true);
    }
  });

  it('refuses every single-character change, anywhere (CRC32 catches all 8-bit bursts)', () => {
    const token = generateToken('checksum', 'knox_', LENGTH);
    fc.assert(
      fc.property(
        fc.nat({ max: token.length - 1 }),
        fc.constantFrom(...BASE62, '_', '-'),
        (at, replacement) => {
          fc.pre(token[at] !== replacement);
          const typo = token.slice(0, at) + replacement + token.slice(at + 1);
          expect(wellFormed(typo)).toBe(false);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('refuses swapped neighbours, dropped and added characters', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 53 }),
        base62Char,
        fc.string({ unit: base62Char, minLength: 43, maxLength: 43 }),
        (at, extra, random) => {
          const token = 'knox_' + random + checksumOf('knox_' + random);
          expect(wellFormed(token)).toBe(true);
          const swapped =
            token.slice(0, at) +
            token[at + 1] +
            token[at] +
            token.slice(at + 2);
          if (swapped !== token) {
            expect(wellFormed(swapped)).toBe(false);
          }
          expect(wellFormed(token.slice(0, at) + token.slice(at + 1))).toBe(
            false,
          );
          expect(wellFormed(token.slice(0, at) + extra + token.slice(at))).toBe(
            false,
          );
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('checks the prefix too: same random part and checksum under another prefix is refused', () => {
    const token = generateToken('checksum', 'knox_', LENGTH);
    expect(wellFormed('knoy_' + token.slice(5))).toBe(false);
    expect(wellFormed('myapp_' + token.slice(5))).toBe(false);
  });

  it('refuses short or unterminated prefixes', () => {
    expect(isChecksumPrefix('knox_', MAX_PREFIX)).toBe(true);
    expect(isChecksumPrefix('ab_', MAX_PREFIX)).toBe(false);
    expect(isChecksumPrefix('knox', MAX_PREFIX)).toBe(false);
    expect(isChecksumPrefix('kn x_', MAX_PREFIX)).toBe(false);
    expect(isChecksumPrefix('abcdefghij_', MAX_PREFIX)).toBe(false);
    const random = 'A'.repeat(43);
    for (const prefix of ['ab_', 'knox', 'knox-']) {
      expect(wellFormed(prefix + random + checksumOf(prefix + random))).toBe(
        false,
      );
    }
  });
});

describe('knox token format', () => {
  it('is the prefix + 64 lowercase hex characters, as django-rest-knox issues', () => {
    expect(generateToken('knox', '', LENGTH)).toMatch(/^[0-9a-f]{64}$/);
    expect(generateToken('knox', 'TEST_', LENGTH)).toMatch(
      /^TEST_[0-9a-f]{64}$/,
    );
    expect(wellFormed(generateToken('knox', '', LENGTH))).toBe(true);
    expect(wellFormed(generateToken('knox', 'abcdefghij', LENGTH))).toBe(true);
  });

  it('refuses wrong lengths and alphabets', () => {
    const token = generateToken('knox', '', LENGTH);
    expect(wellFormed(token.slice(1))).toBe(false);
    expect(wellFormed(token.slice(0, 14))).toBe(false);
    expect(wellFormed('ABCDEFGHIJK' + token)).toBe(false);
    expect(wellFormed(token.slice(0, -1) + 'g')).toBe(false);
    expect(wellFormed(token.slice(0, -1) + 'A')).toBe(false);
    expect(wellFormed(token.slice(0, -1) + 'é')).toBe(false);
    expect(wellFormed('')).toBe(false);
  });
});

describe('isWellFormedToken on arbitrary input', () => {
  it('refuses any string with a character outside printable ASCII', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 120 }),
        fc.string({
          unit: fc
            .oneof(
              fc.integer({ min: 0, max: 0x20 }),
              fc.integer({ min: 0x7f, max: 0xffff }),
            )
            .map((code) => String.fromCharCode(code)),
          minLength: 1,
          maxLength: 3,
        }),
        (text, bad) => {
          expect(wellFormed(text + bad)).toBe(false);
          expect(wellFormed(bad + text)).toBe(false);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('accepts a random printable string only when it has one of the two shapes', () => {
    const knoxShape = /^[\x21-\x7e]{0,10}[0-9a-f]{64}$/;
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme-ascii', maxLength: 90 }),
        (text) => {
          const expected =
            knoxShape.test(text) ||
            (/^[\x21-\x7e]{3,9}_[0-9A-Za-z]{49}$/.test(text) &&
              checksumOf(text.slice(0, -6)) === text.slice(-6));
          expect(wellFormed(text)).toBe(expected);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

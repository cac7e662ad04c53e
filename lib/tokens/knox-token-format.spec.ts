import { describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import {
  CHECKSUM_LENGTH,
  CHECKSUM_RANDOM_LENGTH,
  digestToken,
  digestsEqual,
  generateToken,
  isWellFormedToken,
  toBase62,
  tokenKeyOf,
} from './knox-token-format.js';

const wellFormed = (token: string) => isWellFormedToken(token, 64, 10);

describe('knox token format', () => {
  it('issues 64 lowercase hex characters (256 bits) by default', () => {
    const token = generateToken('knox', '', 64);
    expect(token).toMatch(/^[0-9a-f]{64}$/);
  });

  it('puts the prefix in front of the random part', () => {
    expect(generateToken('knox', 'TEST_', 64)).toMatch(/^TEST_[0-9a-f]{64}$/);
    expect(generateToken('knox', '', 32)).toMatch(/^[0-9a-f]{32}$/);
  });

  it('never issues the same token twice', () => {
    const tokens = new Set(
      Array.from({ length: 200 }, () => generateToken('knox', '', 64)),
    );
    expect(tokens.size).toBe(200);
  });

  it('digests as knox does: SHA-512 hex of the UTF-8 token, 128 lowercase hex', () => {
    // The SHA-512 test vector of FIPS 180-2 ("abc").
    expect(digestToken('abc')).toBe(
      'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a' +
        '2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f',
    );
    const token = generateToken('knox', 'TEST_', 64);
    expect(digestToken(token)).toMatch(/^[0-9a-f]{128}$/);
    expect(digestToken(token)).toBe(
      createHash('sha512').update(Buffer.from(token, 'utf8')).digest('hex'),
    );
  });

  it("keys a token by its first 15 characters (knox's token_key)", () => {
    const token = 'TEST_0123456789abcdef';
    expect(tokenKeyOf(token)).toBe('TEST_0123456789');
    expect(tokenKeyOf('abc')).toBe('abc');
  });

  it('compares digests in constant time and by value', () => {
    const a = digestToken('a');
    expect(digestsEqual(a, digestToken('a'))).toBe(true);
    expect(digestsEqual(a, digestToken('b'))).toBe(false);
    expect(digestsEqual(a, a.slice(1))).toBe(false);
  });

  describe('isWellFormedToken', () => {
    const token = generateToken('knox', '', 64);

    it('accepts knox tokens with and without a prefix of up to 10 characters', () => {
      expect(wellFormed(token)).toBe(true);
      expect(wellFormed(`TEST_${token}`)).toBe(true);
      expect(wellFormed(`0123456789${token}`)).toBe(true);
    });

    it('refuses a token that is too short (14 characters) or too long', () => {
      expect(wellFormed(token.slice(0, 14))).toBe(false);
      expect(wellFormed(token.slice(0, 63))).toBe(false);
      expect(wellFormed(`01234567890${token}`)).toBe(false);
    });

    it('refuses upper-case hex, spaces, control and non-ASCII characters', () => {
      expect(wellFormed(token.toUpperCase())).toBe(false);
      expect(wellFormed(`${token.slice(0, 32)} ${token.slice(33)}`)).toBe(
        false,
      );
      expect(wellFormed(`\u0001${token}`)).toBe(false);
      expect(wellFormed(`é${token}`)).toBe(false);
      expect(wellFormed('')).toBe(false);
    });
  });

  describe('checksum format', () => {
    it('encodes base62 at a fixed width; 43 digits hold 256 bits', () => {
      expect(toBase62(0n, 3)).toBe('000');
      expect(toBase62(61n, 1)).toBe('z');
      expect(toBase62(62n, 2)).toBe('10');
      expect(toBase62(2n ** 256n - 1n, CHECKSUM_RANDOM_LENGTH)).toHaveLength(
        CHECKSUM_RANDOM_LENGTH,
      );
      expect(toBase62(2n ** 32n - 1n, CHECKSUM_LENGTH)).toHaveLength(
        CHECKSUM_LENGTH,
      );
    });

    it('issues prefix + 43 base62 + a 6-character CRC32 that checks out', () => {
      const token = generateToken('checksum', 'knox_', 64);
      expect(token).toMatch(
        new RegExp(
          `^knox_[0-9A-Za-z]{${CHECKSUM_RANDOM_LENGTH + CHECKSUM_LENGTH}}$`,
        ),
      );
      expect(token.slice(-CHECKSUM_LENGTH)).toMatch(/^[0-9A-Za-z]{6}$/);
      expect(wellFormed(token)).toBe(true);
    });

    it('catches any one-character typo offline', () => {
      const token = generateToken('checksum', 'knox_', 64);
      for (let i = 5; i < token.length; i += 1) {
        const replacement = token[i] === 'a' ? 'b' : 'a';
        const typo = token.slice(0, i) + replacement + token.slice(i + 1);
        expect(wellFormed(typo)).toBe(false);
      }
    });

    it('requires the prefix to end in an underscore', () => {
      const token = generateToken('checksum', 'knox_', 64);
      expect(wellFormed(`knox-${token.slice(5)}`)).toBe(false);
      expect(wellFormed(token.slice(5))).toBe(false);
    });
  });
});

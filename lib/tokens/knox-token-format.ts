import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { TOKEN_KEY_LENGTH } from '../knox.constants.js';
import type { KnoxTokenFormat } from '../options/knox-module-options.interface.js';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** What a presented token may consist of: printable ASCII, no spaces. */
export const TOKEN_CHARACTERS = /^[\x21-\x7e]+$/;

/** Base62 characters carrying 256 random bits in a checksum-format token (62^43 > 2^256). */
export const CHECKSUM_RANDOM_LENGTH = 43;
/** Base62 characters of the CRC32 at the end of a checksum-format token (62^6 > 2^32). */
export const CHECKSUM_LENGTH = 6;
/** Shortest prefix of a checksum-format token (it must also end in `_`). */
export const CHECKSUM_MIN_PREFIX_LENGTH = 4;

const CHECKSUM_BODY = new RegExp(
  `^[0-9A-Za-z]{${CHECKSUM_RANDOM_LENGTH + CHECKSUM_LENGTH}}$`,
);
const PRINTABLE = /^[\x21-\x7e]*$/;
const LOWER_HEX = /^[0-9a-f]+$/;

/** Fixed-width base62 of an unsigned integer, most significant digit first. */
export function toBase62(value: bigint, width: number): string {
  let out = '';
  let rest = value;
  while (rest > 0n) {
    out = BASE62[Number(rest % 62n)] + out;
    rest /= 62n;
  }
  if (out.length > width) {
    throw new RangeError(`${value} does not fit in ${width} base62 digits.`);
  }
  return out.padStart(width, '0');
}

/**
 * The checksum of a checksum-format token: the CRC32 (zlib's, ISO-HDLC) of everything before
 * it, prefix included, as 6 base62 digits.
 */
export function checksumOf(head: string): string {
  return toBase62(BigInt(crc32(head)), CHECKSUM_LENGTH);
}

/**
 * Whether `prefix` may start a checksum-format token: 4 to `maxLength` printable ASCII
 * characters, ending in `_`.
 */
export function isChecksumPrefix(prefix: string, maxLength: number): boolean {
  return (
    prefix.length >= CHECKSUM_MIN_PREFIX_LENGTH &&
    prefix.length <= maxLength &&
    prefix.endsWith('_') &&
    PRINTABLE.test(prefix)
  );
}

/** Issues a new token in the given format. */
export function generateToken(
  format: KnoxTokenFormat,
  prefix: string,
  characterLength: number,
): string {
  if (format === 'checksum') {
    const random = toBase62(
      BigInt('0x' + randomBytes(32).toString('hex')),
      CHECKSUM_RANDOM_LENGTH,
    );
    return prefix + random + checksumOf(prefix + random);
  }
  return prefix + randomBytes(characterLength / 2).toString('hex');
}

/** SHA-512 hex digest of the whole token, as knox stores it. */
export function digestToken(token: string): string {
  return createHash('sha512').update(token, 'utf8').digest('hex');
}

/** knox's `token_key`: the first 15 characters of the token. */
export function tokenKeyOf(token: string): string {
  return token.slice(0, TOKEN_KEY_LENGTH);
}

/** Constant-time comparison of two hex digests. */
export function digestsEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  return left.length === right.length && timingSafeEqual(left, right);
}

/**
 * Whether a token can possibly be one this module (or django-rest-knox) issued:
 * - knox's shape: a prefix of up to `maxPrefixLength` printable characters, then
 *   `characterLength` lowercase hex characters;
 * - the checksum shape: a prefix of 4 to `maxPrefixLength` printable characters ending in `_`,
 *   43 base62 characters, then the base62 CRC32 of everything before it.
 *
 * Both shapes are accepted whichever `tokenFormat` issues new tokens, so switching formats keeps
 * the old tokens working. Anything else is refused without a database query.
 */
export function isWellFormedToken(
  token: string,
  characterLength: number,
  maxPrefixLength: number,
): boolean {
  if (!PRINTABLE.test(token)) {
    return false;
  }
  if (
    token.length >= characterLength &&
    token.length <= characterLength + maxPrefixLength &&
    LOWER_HEX.test(token.slice(token.length - characterLength))
  ) {
    return true;
  }
  const prefixLength = token.length - CHECKSUM_RANDOM_LENGTH - CHECKSUM_LENGTH;
  if (
    prefixLength < CHECKSUM_MIN_PREFIX_LENGTH ||
    !isChecksumPrefix(token.slice(0, prefixLength), maxPrefixLength) ||
    !CHECKSUM_BODY.test(token.slice(prefixLength))
  ) {
    return false;
  }
  const split = token.length - CHECKSUM_LENGTH;
  return checksumOf(token.slice(0, split)) === token.slice(split);
}

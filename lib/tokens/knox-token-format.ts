import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { TOKEN_KEY_LENGTH } from '../knox.constants.js';
import type { KnoxTokenFormat } from '../interfaces/knox-module-options.interface.js';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Base62 characters carrying 256 random bits in a checksum-format token. */
export const CHECKSUM_RANDOM_LENGTH = 43;
/** Base62 characters of the CRC32 at the end of a checksum-format token. */
export const CHECKSUM_LENGTH = 6;

const CHECKSUM_BODY = new RegExp(
  `^[0-9A-Za-z]{${CHECKSUM_RANDOM_LENGTH + CHECKSUM_LENGTH}}$`,
);
const PRINTABLE = /^[\x21-\x7e]*$/;
const LOWER_HEX = /^[0-9a-f]+$/;

/** Fixed-width base62 of a big-endian unsigned integer. */
export function toBase62(value: bigint, width: number): string {
  let out = '';
  let rest = value;
  while (rest > 0n) {
    out = BASE62[Number(rest % 62n)] + out;
    rest /= 62n;
  }
  return out.padStart(width, '0');
}

/** The base62 CRC32 checksum of a checksum-format token's random part. */
export function checksumOf(randomPart: string): string {
  return toBase62(BigInt(crc32(randomPart)), CHECKSUM_LENGTH);
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
    return prefix + random + checksumOf(random);
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
 * Whether a token can possibly be one this module (or django-rest-knox) issued: knox's shape
 * (a prefix of up to 10 printable characters, then `characterLength` lowercase hex), or the
 * checksum shape with a valid CRC32. Anything else is refused without a database query.
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
  const bodyLength = CHECKSUM_RANDOM_LENGTH + CHECKSUM_LENGTH;
  const prefixLength = token.length - bodyLength;
  if (prefixLength < 1 || prefixLength > maxPrefixLength) {
    return false;
  }
  const body = token.slice(prefixLength);
  if (
    !token.slice(0, prefixLength).endsWith('_') ||
    !CHECKSUM_BODY.test(body)
  ) {
    return false;
  }
  const random = body.slice(0, CHECKSUM_RANDOM_LENGTH);
  return checksumOf(random) === body.slice(CHECKSUM_RANDOM_LENGTH);
}

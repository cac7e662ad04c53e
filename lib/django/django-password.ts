import {
  createHash,
  pbkdf2 as pbkdf2Callback,
  randomBytes,
  randomInt,
  scrypt as scryptCallback,
  type ScryptOptions,
} from 'node:crypto';
import { digestsEqual } from '../tokens/knox-token-format.js';
import { promisify } from 'node:util';
import { loadArgon2, loadBcrypt } from './django-optional-peers.js';

const pbkdf2 = promisify(pbkdf2Callback);
const scrypt = promisify(scryptCallback) as (
  password: string,
  salt: string,
  keylen: number,
  options: ScryptOptions,
) => Promise<Buffer>;

/**
 * Django's default PBKDF2 iteration count in Django 5.2 LTS (`PBKDF2PasswordHasher.iterations`).
 * Earlier releases used 260 000 (3.2), 320 000 (4.0), 390 000 (4.1), 600 000 (4.2),
 * 720 000 (5.0) and 870 000 (5.1). Pass your Django's count where it differs.
 */
export const DJANGO_PBKDF2_ITERATIONS = 1_000_000;

/** Options of {@link makeDjangoPassword} and {@link djangoPasswordNeedsRehash}. */
export interface DjangoPasswordOptions {
  /**
   * PBKDF2 iterations of new hashes, and the count below which (or above which) a stored
   * `pbkdf2_sha256` hash is outdated. Use your Django's `PBKDF2PasswordHasher.iterations`
   * while Django shares the table, or Django rewrites every hash again on its next login.
   * @default DJANGO_PBKDF2_ITERATIONS (1 000 000, Django 5.2)
   */
  iterations?: number;
}

/** What marks an unusable password in Django (`set_unusable_password()`, `password=None`). */
export const DJANGO_UNUSABLE_PASSWORD_PREFIX = '!';

const SALT_CHARS =
  'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
/** Django's `salt_entropy`: 128 bits, i.e. 22 characters of its 62-letter alphabet. */
const SALT_LENGTH = 22;
const MAX_ITERATIONS = 2 ** 31 - 1;
/** scrypt memory above this (128·N·r bytes) is taken for a corrupt row, not a real hash. */
const MAX_SCRYPT_MEMORY = 1024 * 1024 * 1024;

const DECIMAL = /^[1-9][0-9]{0,9}$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const BCRYPT_HASH = /^\$2[abxy]?\$[0-9]{2}\$[./A-Za-z0-9]{53}$/;
const LONE_SURROGATE =
  /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Whether a stored Django password can ever verify: `false` for `null`, the empty string and
 * Django's unusable passwords (`!` + 40 characters). Mirrors `has_usable_password()`.
 */
export function isDjangoPasswordUsable(
  encoded: string | null | undefined,
): boolean {
  return (
    typeof encoded === 'string' &&
    encoded.length > 0 &&
    !encoded.startsWith(DJANGO_UNUSABLE_PASSWORD_PREFIX)
  );
}

/**
 * Checks a password against the `password` column of Django's `auth_user`, as Django's
 * `check_password` does. Supported hashers (Django's defaults and scrypt):
 * `pbkdf2_sha256`, `pbkdf2_sha1`, `scrypt` (node:crypto), `argon2` (needs the optional package
 * `argon2` or `@node-rs/argon2`), `bcrypt_sha256` and `bcrypt` (need `bcrypt` or `bcryptjs`).
 * The optional packages are loaded the first time such a hash is met.
 *
 * Resolves `false` for a wrong password, an unusable password (`!…`), a malformed or unknown
 * encoding (including the legacy md5/sha1/crypt hashers) and a password that is not a
 * well-formed string; never rejects on such input. Rejects with
 * {@link DjangoPasswordHasherUnavailableError} when the hash needs an optional package that is
 * not installed. Comparisons are constant-time, and the hashing runs off the event loop.
 *
 * @example
 * const ok = await verifyDjangoPassword('s3cret', user.password);
 */
export async function verifyDjangoPassword(
  password: string,
  encoded: string | null | undefined,
): Promise<boolean> {
  if (
    typeof password !== 'string' ||
    LONE_SURROGATE.test(password) ||
    !isDjangoPasswordUsable(encoded)
  ) {
    return false;
  }
  const stored = encoded as string;
  const dollar = stored.indexOf('$');
  const algorithm = dollar < 0 ? stored : stored.slice(0, dollar);
  const rest = stored.slice(dollar + 1);
  switch (algorithm) {
    case 'pbkdf2_sha256':
      return verifyPbkdf2(password, rest, 'sha256', 32);
    case 'pbkdf2_sha1':
      return verifyPbkdf2(password, rest, 'sha1', 20);
    case 'scrypt':
      return verifyScrypt(password, rest);
    case 'argon2':
      return verifyArgon2(password, rest);
    case 'bcrypt_sha256':
      return verifyBcrypt(
        createHash('sha256').update(password, 'utf8').digest('hex'),
        rest,
      );
    case 'bcrypt':
      return verifyBcrypt(password, rest);
    default:
      return false;
  }
}

/**
 * Hashes a password as Django's default `PBKDF2PasswordHasher` does:
 * `pbkdf2_sha256$<iterations>$<22-character salt>$<base64 of 32 bytes>`. Django (any version
 * since 1.4) verifies it, and so does {@link verifyDjangoPassword}.
 */
export async function makeDjangoPassword(
  password: string,
  options: DjangoPasswordOptions = {},
): Promise<string> {
  if (typeof password !== 'string' || LONE_SURROGATE.test(password)) {
    throw new TypeError(
      'makeDjangoPassword: the password must be a well-formed string.',
    );
  }
  const iterations = checkIterations(options.iterations, 'makeDjangoPassword');
  let salt = '';
  for (let i = 0; i < SALT_LENGTH; i++) {
    salt += SALT_CHARS[randomInt(SALT_CHARS.length)];
  }
  const hash = await pbkdf2(password, salt, iterations, 32, 'sha256');
  return `pbkdf2_sha256$${iterations}$${salt}$${hash.toString('base64')}`;
}

/**
 * A check that always fails but takes as long as verifying a `pbkdf2_sha256` hash of
 * `iterations` (against a random password's hash, made on first use): what an unknown username
 * or an unusable password is answered after, so that it cannot be told from a wrong password.
 */
export function djangoMismatchDelay(
  iterations: number,
): (password: string) => Promise<void> {
  let dummy: Promise<string> | undefined;
  return async (password) => {
    dummy ??= makeDjangoPassword(randomBytes(16).toString('hex'), {
      iterations,
    });
    await verifyDjangoPassword(password, await dummy);
  };
}

/**
 * Whether a stored hash should be replaced by {@link makeDjangoPassword} after the password
 * verified, as Django's `must_update` decides with `PBKDF2PasswordHasher` first in
 * `PASSWORD_HASHERS`: any other hasher, another iteration count, or a salt shorter than
 * Django's 128 bits. `false` for unusable passwords (there is nothing to rehash).
 *
 * Call it only after {@link verifyDjangoPassword} resolved `true`: only then is the password
 * known, and rewriting the column is an opt-in choice of the app (see `djangoValidateUser`'s
 * `rehash`).
 */
export function djangoPasswordNeedsRehash(
  encoded: string | null | undefined,
  options: DjangoPasswordOptions = {},
): boolean {
  const iterations = checkIterations(
    options.iterations,
    'djangoPasswordNeedsRehash',
  );
  if (!isDjangoPasswordUsable(encoded)) {
    return false;
  }
  const parts = (encoded as string).split('$');
  if (parts.length !== 4 || parts[0] !== 'pbkdf2_sha256') {
    return true;
  }
  return parts[1] !== String(iterations) || parts[2].length < SALT_LENGTH;
}

function checkIterations(value: number | undefined, caller: string): number {
  const iterations = value ?? DJANGO_PBKDF2_ITERATIONS;
  if (
    !Number.isInteger(iterations) ||
    iterations < 1 ||
    iterations > MAX_ITERATIONS
  ) {
    throw new TypeError(
      `${caller}: \`iterations\` must be a positive integer (Django's PBKDF2PasswordHasher.iterations); got ${String(value)}.`,
    );
  }
  return iterations;
}

/** Compares two ASCII strings in time that depends only on their lengths. */
const sameText = digestsEqual;

async function verifyPbkdf2(
  password: string,
  rest: string,
  digest: 'sha256' | 'sha1',
  length: number,
): Promise<boolean> {
  // <iterations>$<salt>$<base64 hash>
  const parts = rest.split('$');
  if (
    parts.length !== 3 ||
    !DECIMAL.test(parts[0]) ||
    parts[1] === '' ||
    !BASE64.test(parts[2])
  ) {
    return false;
  }
  const iterations = Number(parts[0]);
  if (iterations > MAX_ITERATIONS) {
    return false;
  }
  const hash = await pbkdf2(password, parts[1], iterations, length, digest);
  return sameText(hash.toString('base64'), parts[2]);
}

async function verifyScrypt(password: string, rest: string): Promise<boolean> {
  // Django 4.0+: scrypt$<N>$<salt>$<r>$<p>$<base64 of 64 bytes>
  const parts = rest.split('$');
  if (
    parts.length !== 5 ||
    !DECIMAL.test(parts[0]) ||
    parts[1] === '' ||
    !DECIMAL.test(parts[2]) ||
    !DECIMAL.test(parts[3]) ||
    !BASE64.test(parts[4])
  ) {
    return false;
  }
  const N = Number(parts[0]);
  const r = Number(parts[2]);
  const p = Number(parts[3]);
  const memory = 128 * N * r;
  if (N < 2 || (N & (N - 1)) !== 0 || memory > MAX_SCRYPT_MEMORY) {
    return false;
  }
  try {
    const hash = await scrypt(password, parts[1], 64, {
      N,
      r,
      p,
      maxmem: memory * 2 + 1024 * 1024,
    });
    return sameText(hash.toString('base64'), parts[4]);
  } catch {
    // Parameters OpenSSL refuses (e.g. p too large for r): not a hash Django could have made.
    return false;
  }
}

async function verifyArgon2(password: string, rest: string): Promise<boolean> {
  // argon2$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>: a PHC string once its `$` is put back.
  if (!/^argon2(?:id|i|d)\$/.test(rest)) {
    return false;
  }
  const verify = await loadArgon2();
  try {
    return (await verify(password, `$${rest}`)) === true;
  } catch {
    return false;
  }
}

async function verifyBcrypt(password: string, hash: string): Promise<boolean> {
  if (!BCRYPT_HASH.test(hash)) {
    return false;
  }
  const compare = await loadBcrypt();
  try {
    return (await compare(password, hash)) === true;
  } catch {
    return false;
  }
}

import { MAXIMUM_TOKEN_PREFIX_LENGTH } from '../knox.constants.js';
import { parseAbilities } from '../abilities/knox-abilities.js';
import { KnoxOptionsError } from './knox-options-error.js';

/**
 * Where a value is checked, which decides the wording of the error:
 * - `'boot'`: a module option, a {@link KnoxOptionsError} "KnoxModule: \`tokenTtl\` must be …";
 * - `'service'`: a value given to a `KnoxTokenService` call (or returned by a per-login hook), an
 *   `Error` "KnoxTokenService: a token TTL must be …".
 */
export type KnoxCheckSite = 'boot' | 'service';

/**
 * What happens when a user already holds `tokenLimitPerUser` live tokens and logs in again.
 * - `reject`: knox's behaviour, 403 "Maximum amount of tokens allowed per user exceeded."
 * - `evict-oldest`: the oldest live tokens are revoked to make room.
 * - `evict-least-recently-used`: the tokens used least recently (or never) are revoked to make room.
 */
export type KnoxTokenLimitPolicy =
  'reject' | 'evict-oldest' | 'evict-least-recently-used';

/**
 * The shape of newly issued tokens.
 * - `knox`: `tokenPrefix` + 64 lowercase hex characters, exactly as django-rest-knox issues them.
 * - `checksum`: `tokenPrefix` (at least 4 characters ending in `_`) + 43 base62 characters
 *   (256 random bits) + a 6-character base62 CRC32 of everything before it, like GitHub's `ghp_…`
 *   tokens, so secret scanners can recognise leaked tokens and typos are caught offline.
 *
 * Whichever is chosen, tokens of the other shape that are already in the database keep working.
 */
export type KnoxTokenFormat = 'knox' | 'checksum';

/** The token limit policies, as `tokenLimitPolicy` accepts them. */
export const POLICIES: readonly KnoxTokenLimitPolicy[] = [
  'reject',
  'evict-oldest',
  'evict-least-recently-used',
];

/** The token formats, as `tokenFormat` accepts them. */
export const TOKEN_FORMATS: readonly KnoxTokenFormat[] = ['knox', 'checksum'];

/** Size of the token table's `name` column: the longest name a token may carry. */
export const TOKEN_NAME_COLUMN_LENGTH = 200;

const PRINTABLE_ASCII = /^[\x21-\x7e]*$/;

/** Throws the boot wording or the service wording of one failed check. */
function fail(where: KnoxCheckSite, boot: string, service: string): never {
  if (where === 'boot') {
    throw new KnoxOptionsError(boot);
  }
  throw new Error(`KnoxTokenService: ${service}`);
}

/** A string that `Number()` reads as a finite number, e.g. `'3600000'` from an env variable. */
function looksNumeric(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    value.trim() !== '' &&
    Number.isFinite(Number(value))
  );
}

/**
 * What a number or boolean option got, for its message: strings are named as such, and one
 * that holds a number or a boolean (configuration values are strings) gets the way to fix it.
 */
export function described(value: unknown): string {
  if (typeof value !== 'string') {
    return String(value);
  }
  const it = `got the string '${value}'`;
  if (looksNumeric(value)) {
    return `${it}. Configuration values are strings: convert it with \`Number(...)\`, or have a @nestjs/config validation schema convert it (e.g. \`Joi.number()\`) and read it with \`ConfigService.get<number>(…, { infer: true })\``;
  }
  if (value === 'true' || value === 'false') {
    return `${it}. Configuration values are strings: convert it, e.g. \`config.get('…') === 'true'\`, or have a @nestjs/config validation schema convert it (e.g. \`Joi.boolean()\`)`;
  }
  return it;
}

/** `got X.` for the end of a message (`described` already says "got" for strings). */
function got(value: unknown): string {
  return typeof value === 'string'
    ? `${described(value)}.`
    : `got ${String(value)}.`;
}

const NUMBER_RULES = {
  duration: {
    valid: (n: number) => Number.isFinite(n) && n >= 0,
    what: 'a duration in milliseconds (a finite number >= 0)',
  },
  count: {
    valid: (n: number) => Number.isInteger(n) && n >= 1,
    what: 'a whole number >= 1',
  },
};

/** A number option of one of the {@link NUMBER_RULES} (or null where allowed). */
function checkNumber(
  rule: keyof typeof NUMBER_RULES,
  name: string,
  value: unknown,
  nullable: boolean,
): number | null {
  if (value === null && nullable) {
    return null;
  }
  const { valid, what } = NUMBER_RULES[rule];
  if (typeof value !== 'number' || !valid(value)) {
    throw new KnoxOptionsError(
      `\`${name}\` must be ${what}${nullable ? ' or null' : ''}; ${got(value)}`,
    );
  }
  return value;
}

/** A duration option in milliseconds: a finite number >= 0 (or null where allowed). */
export const checkDuration = checkNumber.bind(undefined, 'duration');

/** A count option: a whole number >= 1 (or null where allowed). */
export const checkCount = checkNumber.bind(undefined, 'count');

/** A boolean option. */
export function checkBoolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') {
    throw new KnoxOptionsError(
      `\`${name}\` must be true or false; ${got(value)}`,
    );
  }
  return value;
}

/** A hook option: a function. */
export function checkFunction<F>(name: string, value: unknown): F {
  if (typeof value !== 'function') {
    throw new KnoxOptionsError(`\`${name}\` must be a function.`);
  }
  return value as F;
}

/**
 * A token lifetime in ms: a number >= 0 whose expiry (`now + ttl`) is a valid `Date`, or `null`
 * (never expires). `tokenTtl` at boot; `create({ ttl })` / `getTokenTtl` on the service.
 *
 * @throws KnoxOptionsError at boot, Error on the service, saying what to fix
 */
export function checkTokenTtl(
  value: unknown,
  where: KnoxCheckSite,
  now: number = Date.now(),
): number | null {
  if (value === null) {
    return null;
  }
  const service = `a token TTL must be a number of ms >= 0 that gives a valid expiry date, or null (never expires); got ${String(value)}.`;
  const ttl = checkOr(where, service, () =>
    checkDuration('tokenTtl', value, true),
  ) as number;
  if (Number.isNaN(new Date(now + ttl).getTime())) {
    fail(
      where,
      `\`tokenTtl\` of ${ttl} ms puts the expiry past the largest date JavaScript can hold; use null for tokens that never expire.`,
      service,
    );
  }
  return ttl;
}

/**
 * The prefix of a new token: at most 10 printable ASCII characters without spaces, and with
 * `tokenFormat: 'checksum'` at least 4 ending in `_` (a token with another prefix would fail the
 * format's offline check and never authenticate). `tokenPrefix` at boot; `create({ prefix })` /
 * `getTokenPrefix` on the service.
 */
export function checkTokenPrefix(
  value: unknown,
  format: KnoxTokenFormat,
  where: KnoxCheckSite,
): string {
  const max = MAXIMUM_TOKEN_PREFIX_LENGTH;
  const shape = `a token prefix must be at most ${max} printable ASCII characters without spaces; got '${String(value)}'.`;
  if (typeof value !== 'string') {
    fail(where, '`tokenPrefix` must be a string.', shape);
  }
  if (value.length > max) {
    fail(
      where,
      `\`tokenPrefix\` must be at most ${max} characters; '${value}' has ${value.length}.`,
      shape,
    );
  }
  if (!PRINTABLE_ASCII.test(value)) {
    fail(
      where,
      '`tokenPrefix` may only contain printable ASCII characters without spaces.',
      shape,
    );
  }
  if (format === 'checksum' && (value.length < 4 || !value.endsWith('_'))) {
    fail(
      where,
      `with \`tokenFormat: 'checksum'\`, \`tokenPrefix\` must be at least 4 characters and end in '_' (e.g. 'myapp_'); got '${value}'.`,
      `with tokenFormat 'checksum', a token prefix must be at least 4 characters and end in '_'; got '${value}'.`,
    );
  }
  return value;
}

/**
 * The most live tokens a user may hold: a whole number >= 1, or `null` for no limit.
 * `tokenLimitPerUser` at boot; `create({ limit })` / `getTokenLimitPerUser` on the service.
 */
export function checkTokenLimit(
  value: unknown,
  where: KnoxCheckSite,
): number | null {
  return checkOr(
    where,
    `a token limit must be a whole number >= 1 or null; got ${String(value)}.`,
    () => checkCount('tokenLimitPerUser', value, true),
  );
}

/** One of {@link POLICIES}. `tokenLimitPolicy` at boot; `create({ policy })` on the service. */
export function checkTokenLimitPolicy(
  value: unknown,
  where: KnoxCheckSite,
): KnoxTokenLimitPolicy {
  if (!POLICIES.includes(value as KnoxTokenLimitPolicy)) {
    fail(
      where,
      `\`tokenLimitPolicy\` must be one of ${POLICIES.map((p) => `'${p}'`).join(', ')}; got ${String(value)}.`,
      `a token limit policy must be one of ${POLICIES.join(', ')}; got ${String(value)}.`,
    );
  }
  return value as KnoxTokenLimitPolicy;
}

/**
 * The name of a new token on the service (`create({ name })`): a string of at most
 * {@link TOKEN_NAME_COLUMN_LENGTH} characters, or `null`. (At login the controller applies the
 * stricter `tokenNameMaxLength`, answering 400.)
 */
export function checkTokenName(value: unknown): string | null {
  if (
    value !== null &&
    (typeof value !== 'string' || value.length > TOKEN_NAME_COLUMN_LENGTH)
  ) {
    fail(
      'service',
      '',
      `a token name must be a string of at most ${TOKEN_NAME_COLUMN_LENGTH} characters (the column's size) or null.`,
    );
  }
  return value;
}

/**
 * A token's abilities: an array of ability names (see docs/abilities.md), duplicates dropped,
 * or `null` for every ability. `loginAbilities` at boot (`name` is the option);
 * `create({ abilities })` / `getTokenAbilities` on the service.
 */
export function checkAbilities(
  value: unknown,
  where: KnoxCheckSite,
  name = 'abilities',
): string[] | null {
  if (value === null) {
    return null;
  }
  const parsed = parseAbilities(
    value,
    where === 'boot' ? `\`${name}\`` : 'abilities',
  );
  if ('error' in parsed) {
    fail(where, parsed.error, `${parsed.error} Use null for every ability.`);
  }
  return parsed.abilities;
}

/** What `create({ source })` may name; `rotate` is the library's own. */
const CREATE_SOURCES: readonly string[] = [
  'app',
  'login',
  'personal-access-token',
];

/** `create({ source })`: `'app'` (the default), `'login'` or `'personal-access-token'`. */
export function checkTokenSource(
  value: unknown,
): 'app' | 'login' | 'personal-access-token' {
  if (value === undefined) {
    return 'app';
  }
  if (!CREATE_SOURCES.includes(value as string)) {
    fail(
      'service',
      '',
      `a token's source must be one of ${CREATE_SOURCES.map((s) => `'${s}'`).join(', ')}; ${described(value)}.`,
    );
  }
  return value as 'app' | 'login' | 'personal-access-token';
}

/** `pruneExpired({ batchSize })`: a whole number >= 1. */
export function checkPruneBatchSize(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    fail(
      'service',
      '',
      `pruneExpired's batchSize must be a whole number >= 1; got ${String(value)}.`,
    );
  }
  return value;
}

/** Runs a boot check; on the service, replaces its error with the service wording. */
function checkOr<T>(where: KnoxCheckSite, service: string, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (where === 'boot' || !(error instanceof KnoxOptionsError)) {
      throw error;
    }
    return fail(where, '', service);
  }
}

/** Route metadata key set by {@link KnoxPublic}. */
export const KNOX_PUBLIC_KEY = 'knox:public';

/** Injection token of the TypeORM repository of the token entity used by this module. */
export const KNOX_TOKEN_REPOSITORY = 'KNOX_TOKEN_REPOSITORY';

/** Injection token of the resolved (defaults applied, validated) options. */
export const KNOX_RESOLVED_OPTIONS = 'KNOX_RESOLVED_OPTIONS';

/** Injection token of the extras given to `forRoot` / `forRootAsync`. */
export const KNOX_MODULE_EXTRAS = 'KNOX_MODULE_EXTRAS';

/** Length of `token_key`, the indexed lookup key knox stores beside the digest. */
export const TOKEN_KEY_LENGTH = 15;

/** The longest token prefix knox allows. */
export const MAXIMUM_TOKEN_PREFIX_LENGTH = 10;

/** Size of the `ip` and `last_used_ip` columns: the longest IPv6 address in text. */
export const IP_COLUMN_LENGTH = 45;

/** Size of the `user_agent` column: a longer user agent is cut to it. */
export const USER_AGENT_LENGTH = 512;

/** Length of a SHA-512 hex digest. */
export const DIGEST_LENGTH = 128;

export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

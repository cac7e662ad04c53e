import { DAY } from '../knox.constants.js';
import { ABILITY_RULE, isAbility } from '../abilities/knox-abilities.js';
import { KnoxOptionsError } from './knox-options-error.js';
import { checkDuration } from './knox-option-checks.js';
import {
  fixed,
  resolveNested,
  type KnoxOptionTable,
} from './knox-option-table.js';

/**
 * `POST {path}/tokens`: personal access tokens (named tokens with chosen abilities, for CLIs,
 * CI and integrations). Creating one needs the account password again in the body, or, when
 * `createAbility` is set, a calling token that names that ability explicitly.
 */
export interface KnoxPersonalAccessTokenOptions {
  /**
   * The longest lifetime a personal access token may be given, in ms (a request asking for more
   * is answered 400); also the lifetime of one created without `ttl`. `null`: no cap, and a token
   * created without `ttl` (or with `ttl: null`) never expires.
   * @default 31536000000 (365 days)
   */
  maxTtl?: number | null;
  /**
   * An ability (e.g. `'tokens:create'`) that lets a token create tokens without the password.
   * Only a token that lists this ability by name qualifies: `'*'`, `ns:*` and tokens with every
   * ability (`null`) do not, so login tokens never mint tokens unless the app gave them the
   * ability. `null` keeps creation behind the password.
   * @default null
   */
  createAbility?: string | null;
}

/** `personalAccessTokens` of `ResolvedKnoxOptions`: every default applied. */
export interface ResolvedKnoxPersonalAccessTokens {
  maxTtl: number | null;
  createAbility: string | null;
}

/** The rows of `personalAccessTokens: { … }`. */
export const PERSONAL_ACCESS_TOKEN_OPTIONS: KnoxOptionTable = {
  maxTtl: {
    kind: 'duration',
    fallback: fixed(365 * DAY),
    check: (value, _r, name) => {
      if (value === null) {
        return null;
      }
      const ttl = checkDuration(name, value, true) as number;
      if (ttl < 1) {
        throw new KnoxOptionsError(
          `\`${name}\` must be at least 1 ms, or null for no cap; got ${ttl}.`,
        );
      }
      if (Number.isNaN(new Date(Date.now() + ttl).getTime())) {
        throw new KnoxOptionsError(
          `\`${name}\` of ${ttl} ms puts the expiry past the largest date JavaScript can hold; use null for no cap.`,
        );
      }
      return ttl;
    },
  },
  createAbility: {
    kind: 'string',
    fallback: fixed(null),
    check: (value, _r, name) => {
      if (value === null) {
        return null;
      }
      if (!isAbility(value) || value.includes('*')) {
        throw new KnoxOptionsError(
          `\`${name}\` must be one ability without wildcard (e.g. 'tokens:create'), or null; got ${JSON.stringify(value)}. An ability is ${ABILITY_RULE}.`,
        );
      }
      return value;
    },
  },
};

/** The `personalAccessTokens` option: `false` is off (`null`), an object is checked row by row. */
export function checkPersonalAccessTokens(value: unknown): unknown {
  return resolveNested(
    value,
    'personalAccessTokens',
    PERSONAL_ACCESS_TOKEN_OPTIONS,
  );
}

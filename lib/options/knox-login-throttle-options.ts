import type { ThrottlerStorage } from '@nestjs/throttler';
import { MINUTE } from '../knox.constants.js';
import { KnoxOptionsError } from './knox-options-error.js';
import { checkCount } from './knox-option-checks.js';
import {
  count,
  fixed,
  resolveNested,
  type KnoxOptionTable,
} from './knox-option-table.js';

/**
 * Login throttling: attempts counted per username (case-insensitive) and per client IP within a
 * sliding window, in a `@nestjs/throttler` storage. Every attempt that reaches `validateUser`
 * counts, successful ones too: the counter is taken before the password is checked, so a burst
 * of parallel guesses cannot slip through while slow password hashes run. Past a limit the
 * login answers 429 with `Retry-After` (seconds) for `ttl`. The client IP is Express's or
 * Fastify's `request.ip`: behind a proxy, enable `trust proxy` or every client shares the
 * proxy's address.
 */
export interface KnoxLoginThrottleOptions {
  /**
   * Length of the counting window, in milliseconds.
   * @default 60000
   */
  ttl?: number;
  /**
   * Attempts allowed per username (case-insensitive) within the window.
   * @default 10
   */
  limitPerUsername?: number;
  /**
   * Attempts allowed per client IP within the window.
   * @default 30
   */
  limitPerIp?: number;
  /**
   * Where the counters live; any `@nestjs/throttler` storage (e.g. a Redis one for several instances).
   * @default an in-memory storage that counts as `@nestjs/throttler`'s `ThrottlerStorageService`
   *   does, holding at most `maxKeys` counters
   */
  storage?: ThrottlerStorage;

  /**
   * The most counters (one per client IP, one per username) the default in-memory storage
   * holds. Past it, the counters counted least recently are dropped first, so a spray of
   * distinct usernames or addresses cannot grow memory without bound (100 000 counters take
   * about 40 MB of heap). An evicted counter starts again from zero. Only for the default
   * storage: with `storage`, bound the keys there.
   * @default 100000
   */
  maxKeys?: number;
}

/** The default cap on the keys of the in-memory login throttle storage. */
export const DEFAULT_LOGIN_THROTTLE_MAX_KEYS = 100_000;

/** Login throttling with every default applied (`loginThrottle` of `ResolvedKnoxOptions`). */
export interface ResolvedKnoxLoginThrottle {
  ttl: number;
  limitPerUsername: number;
  limitPerIp: number;
  /** The app's storage; the default in-memory one when absent. */
  storage?: ThrottlerStorage;
  /** The cap on the keys of the default in-memory storage. */
  maxKeys: number;
}

/** The rows of `loginThrottle: { … }`. */
export const LOGIN_THROTTLE_OPTIONS: KnoxOptionTable = {
  ttl: count(MINUTE),
  limitPerUsername: count(10),
  limitPerIp: count(30),
  storage: {
    kind: 'object',
    check: (value) => {
      if (typeof (value as ThrottlerStorage | null)?.increment !== 'function') {
        throw new KnoxOptionsError(
          '`loginThrottle.storage` must be a @nestjs/throttler `ThrottlerStorage` (an object with `increment()`).',
        );
      }
      return value;
    },
  },
  maxKeys: {
    kind: 'count',
    fallback: fixed(DEFAULT_LOGIN_THROTTLE_MAX_KEYS),
    check: (value, resolved, name) => {
      if (resolved.storage !== undefined) {
        throw new KnoxOptionsError(
          '`loginThrottle.maxKeys` caps the default in-memory storage; with your own `loginThrottle.storage`, bound the keys there (e.g. a Redis storage expires them).',
        );
      }
      return checkCount(name, value, false);
    },
  },
};

/** The `loginThrottle` option: `false` is off (`null`), an object is checked row by row. */
export function checkLoginThrottle(value: unknown): unknown {
  return resolveNested(value, 'loginThrottle', LOGIN_THROTTLE_OPTIONS);
}

import { KnoxOptionsError } from './knox-options-error.js';
import { checkBoolean } from './knox-option-checks.js';
import {
  fixed,
  resolveTable,
  type KnoxOptionTable,
} from './knox-option-table.js';

/** The cookie transport's settings (`cookie` in {@link KnoxModuleOptions}). */
export interface KnoxCookieOptions {
  /**
   * The cookie's name. A `__Host-` name (e.g. `__Host-knox`) pins it to the exact host; it
   * needs `secure`, path `/` and no `domain`. Unset, it is `__Host-knox_token` when those hold
   * (the defaults), so that no other host of the site and no plain-HTTP page can plant a token
   * cookie beside it (cookie tossing); `__Secure-knox_token` for another secure cookie;
   * `knox_token` with `secure: false`. Several token cookies with different values in one
   * request are refused (401), never resolved by order.
   * @default '__Host-knox_token' (see above)
   */
  name?: string;

  /**
   * Sends the cookie over HTTPS only. Turn it off only for local development over plain HTTP.
   * @default true
   */
  secure?: boolean;

  /**
   * The `SameSite` attribute. `'strict'` keeps every cross-site request from carrying the
   * cookie; `'lax'` lets top-level cross-site navigations (GET links) carry it.
   * @default 'strict'
   */
  sameSite?: 'strict' | 'lax';

  /**
   * The cookie's `Path`.
   * @default '/'
   */
  path?: string;

  /**
   * The cookie's `Domain`; unset, the cookie is host-only (the safer choice).
   * @default undefined
   */
  domain?: string;

  /**
   * Origins (`https://app.example.com`) allowed to send unsafe requests (POST, PUT, PATCH,
   * DELETE…) authenticated by the cookie, besides the API's own host (the `Host` header). Add
   * the front end's origin when it is served from another origin, or when a proxy rewrites
   * `Host`.
   * @default []
   */
  trustedOrigins?: string[];
}

/** The cookie transport's settings, resolved (see `KnoxModuleOptions.cookie`). */
export interface ResolvedKnoxCookie {
  name: string;
  secure: boolean;
  sameSite: 'strict' | 'lax';
  path: string;
  domain: string | null;
  /** Lower-cased `scheme://host[:port]` origins trusted beside the request's own origin. */
  trustedOrigins: string[];
}

const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const COOKIE_ATTRIBUTE = /^[\x21-\x3a\x3c-\x7e]+$/;

/** The rows of `cookie: { … }`. */
export const COOKIE_OPTIONS: KnoxOptionTable = {
  name: {
    kind: 'string',
    fallback: fixed('knox_token'),
    check: (value) => {
      if (typeof value !== 'string' || !COOKIE_NAME.test(value)) {
        throw new KnoxOptionsError(
          "`cookie.name` must be a cookie name (letters, digits and !#$%&'*+-.^_`|~, no spaces or `=`).",
        );
      }
      return value;
    },
  },
  secure: {
    kind: 'boolean',
    fallback: fixed(true),
    check: (value, _r, name) => checkBoolean(name, value),
  },
  sameSite: {
    kind: 'choice',
    fallback: fixed('strict'),
    check: (value) => {
      if (value !== 'strict' && value !== 'lax') {
        throw new KnoxOptionsError(
          `\`cookie.sameSite\` must be 'strict' or 'lax' (a token cookie must never be 'none'); got ${String(value)}.`,
        );
      }
      return value;
    },
  },
  path: {
    kind: 'string',
    fallback: fixed('/'),
    check: (value) => {
      if (
        typeof value !== 'string' ||
        !value.startsWith('/') ||
        !COOKIE_ATTRIBUTE.test(value)
      ) {
        throw new KnoxOptionsError(
          '`cookie.path` must be a path starting with `/`, without spaces or `;`.',
        );
      }
      return value;
    },
  },
  domain: {
    kind: 'string',
    fallback: fixed(null),
    check: (value) => {
      if (typeof value !== 'string' || !COOKIE_ATTRIBUTE.test(value)) {
        throw new KnoxOptionsError(
          '`cookie.domain` must be a domain name such as `example.com`.',
        );
      }
      return value;
    },
  },
  trustedOrigins: {
    kind: 'list',
    fallback: () => [],
    check: (value) => {
      const what =
        '`cookie.trustedOrigins` must be a list of origins such as `https://app.example.com` (scheme, host and port only)';
      if (!Array.isArray(value)) {
        throw new KnoxOptionsError(`${what}.`);
      }
      return value.map((origin: unknown) => {
        let url: URL | null;
        try {
          url = typeof origin === 'string' ? new URL(origin) : null;
        } catch {
          url = null;
        }
        if (
          !url ||
          (url.protocol !== 'https:' && url.protocol !== 'http:') ||
          url.origin.toLowerCase() !==
            String(origin).toLowerCase().replace(/\/$/, '')
        ) {
          throw new KnoxOptionsError(`${what}; got ${String(origin)}.`);
        }
        return url.origin.toLowerCase();
      });
    },
  },
};

/**
 * The `cookie` option: `false` is off (`null`), `true` every default, an object checked row by
 * row, and a `__Host-` or `__Secure-` name only with the attributes browsers require of it.
 */
/**
 * The cookie's name when the app names none: `__Host-knox_token` when the browser can pin it
 * to this host (`secure`, `path: '/'`, no `domain`), so that no other host of the site and no
 * plain-HTTP page can set a cookie of that name (cookie tossing); `__Secure-knox_token` for
 * another secure cookie (no plain-HTTP page can set it); `knox_token` without `secure`.
 */
function defaultCookieName(cookie: ResolvedKnoxCookie): string {
  if (!cookie.secure) {
    return 'knox_token';
  }
  return cookie.path === '/' && cookie.domain === null
    ? '__Host-knox_token'
    : '__Secure-knox_token';
}

export function checkCookie(value: unknown): unknown {
  if (value === false) {
    return null;
  }
  if (value === true) {
    value = {};
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new KnoxOptionsError(
      '`cookie` must be true, false or an object ({ name, secure, sameSite, path, domain, trustedOrigins }).',
    );
  }
  const cookie = resolveTable(
    COOKIE_OPTIONS,
    value as Record<string, unknown>,
    'cookie.',
  ) as unknown as ResolvedKnoxCookie;
  if ((value as { name?: unknown }).name === undefined) {
    cookie.name = defaultCookieName(cookie);
  }
  if (cookie.name.startsWith('__Host-')) {
    if (!cookie.secure || cookie.path !== '/' || cookie.domain !== null) {
      throw new KnoxOptionsError(
        "`cookie.name` starts with `__Host-`: browsers accept such a cookie only with `secure: true`, `path: '/'` and no `domain`.",
      );
    }
  } else if (cookie.name.startsWith('__Secure-') && !cookie.secure) {
    throw new KnoxOptionsError(
      '`cookie.name` starts with `__Secure-`: browsers accept such a cookie only with `secure: true`.',
    );
  }
  return cookie;
}

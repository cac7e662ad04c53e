import { ForbiddenException, UnauthorizedException } from '@nestjs/common';
import { KnoxMessages } from '../knox.messages.js';
import type { KnoxRequest } from '../knox-request.js';
import type { ResolvedKnoxCookie } from '../options/knox-cookie-options.js';
import type { KnoxToken } from '../store/knox-token.entity.js';
import { digestToken, digestsEqual } from '../tokens/knox-token-format.js';

/** The methods a CSRF defence must guard (everything but the safe ones, RFC 9110 §9.2.1). */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

const TOKEN_CHARACTERS = /^[\x21-\x7e]+$/;

/** The attributes shared by the cookie that sets the token and the one that clears it. */
function attributes(cookie: ResolvedKnoxCookie): string {
  return [
    `Path=${cookie.path}`,
    ...(cookie.domain ? [`Domain=${cookie.domain}`] : []),
    'HttpOnly',
    ...(cookie.secure ? ['Secure'] : []),
    `SameSite=${cookie.sameSite === 'strict' ? 'Strict' : 'Lax'}`,
  ].join('; ');
}

/**
 * The `Set-Cookie` value that carries a new token. It expires with the token; with
 * `autoRefresh` (the server moves the expiry) or a token that never expires, it is a
 * browser-session cookie.
 */
export function knoxTokenCookie(
  cookie: ResolvedKnoxCookie,
  token: string,
  expires: Date | null,
): string {
  return [
    `${cookie.name}=${token}`,
    ...(expires ? [`Expires=${expires.toUTCString()}`] : []),
    attributes(cookie),
  ].join('; ');
}

/** The `Set-Cookie` value that removes the token cookie. */
export function knoxClearedCookie(cookie: ResolvedKnoxCookie): string {
  return `${cookie.name}=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; ${attributes(cookie)}`;
}

/**
 * The distinct non-empty values of every token cookie of the request (from the `Cookie` header;
 * no cookie parser needed), in the order they were sent.
 */
export function readKnoxCookies(
  request: KnoxRequest,
  cookie: ResolvedKnoxCookie,
): string[] {
  const header = request.headers?.cookie;
  if (typeof header !== 'string') {
    return [];
  }
  const values = new Set<string>();
  for (const pair of header.split(';')) {
    const at = pair.indexOf('=');
    if (at > 0 && pair.slice(0, at).trim() === cookie.name) {
      let value = pair.slice(at + 1).trim();
      if (value.startsWith('"') && value.endsWith('"') && value.length > 1) {
        value = value.slice(1, -1);
      }
      if (value.length > 0) {
        values.add(value);
      }
    }
  }
  return [...values];
}

/**
 * The token cookie of the request, or `null`. When several token cookies with different values
 * arrive (cookie tossing: a sibling subdomain or a plain-HTTP page set one with a wider
 * `Domain` or a longer `Path`, which browsers send first), none is used: 401
 * {@link KnoxMessages.COOKIE_SEVERAL}. The first one is not "the right one" — browsers order by
 * path length and age, which an attacker controls — and no value can be told to be the
 * host's own. A `__Host-` name (the default with `secure` and no `domain`) cannot be tossed.
 */
export function readKnoxCookie(
  request: KnoxRequest,
  cookie: ResolvedKnoxCookie,
): string | null {
  const values = readKnoxCookies(request, cookie);
  if (values.length > 1) {
    throw new UnauthorizedException(KnoxMessages.COOKIE_SEVERAL(cookie.name));
  }
  return values[0] ?? null;
}

/** `scheme://host[:port]` of a URL, lower-cased, or `null` when it is not one. */
function originOf(value: string): string | null {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:'
      ? url.origin.toLowerCase()
      : null;
  } catch {
    return null;
  }
}

/**
 * Whether a browser sent the request: browsers put `Origin` on every request with an unsafe
 * method (and `Referer` where an old one leaves `Origin` out); other clients send neither. A
 * cookie-mode login from a client that sends neither gets its token in the body and no cookie,
 * so it cannot serve a login CSRF either: no browser is left holding a session.
 */
export function sentByBrowser(request: KnoxRequest): boolean {
  const { origin, referer } = request.headers ?? {};
  return typeof origin === 'string' || typeof referer === 'string';
}

/**
 * The CSRF defence of a request authenticated by the cookie: safe methods pass; an unsafe one
 * must come from the request's own origin (scheme, host and port) or a trusted origin, as its `Origin` header (or, when a
 * browser left it out, its `Referer`) says. Answers 403 otherwise: "must carry an Origin" when
 * it has neither header, "not trusted" when it names another origin or an opaque one
 * (`Origin: null`). (The cookie is also `SameSite`, which keeps other sites' requests from
 * carrying it in current browsers; the Origin check covers sibling subdomains, which count as
 * same-site, and older browsers.)
 */
export function checkKnoxCsrf(
  request: KnoxRequest,
  cookie: ResolvedKnoxCookie,
): void {
  const method = String(request.method ?? 'GET').toUpperCase();
  if (SAFE_METHODS.has(method)) {
    return;
  }
  if (!sentByBrowser(request)) {
    throw new ForbiddenException(KnoxMessages.CSRF_NO_ORIGIN);
  }
  const { origin, referer } = request.headers ?? {};
  const source = originOf(
    typeof origin === 'string' ? origin : String(referer),
  );
  if (
    source === null ||
    (source !== ownOriginOf(request) && !cookie.trustedOrigins.includes(source))
  ) {
    throw new ForbiddenException(KnoxMessages.CSRF_UNTRUSTED_ORIGIN);
  }
}

/**
 * The request's own origin, `scheme://host[:port]` lower-cased: the scheme as the platform
 * computed it (Express's and Fastify's `request.protocol`, which honour `trust proxy` and so
 * `X-Forwarded-Proto`; else whether the socket is TLS), the host from the `Host` header.
 * `null` without a usable `Host`.
 */
function ownOriginOf(request: KnoxRequest): string | null {
  const host = request.headers?.host;
  if (typeof host !== 'string' || host.length === 0) {
    return null;
  }
  const { protocol, socket } = request as {
    protocol?: unknown;
    socket?: { encrypted?: unknown };
  };
  const scheme =
    typeof protocol === 'string'
      ? protocol.replace(/:$/, '')
      : socket?.encrypted === true
        ? 'https'
        : 'http';
  return originOf(`${scheme}://${host}`);
}

/** Whether a cookie value has the shape of a token (printable, no spaces). */
export function isCookieToken(value: string): boolean {
  return TOKEN_CHARACTERS.test(value);
}

/**
 * The token cookie when it is what authenticated this request (not an `Authorization` header):
 * a session held in the cookie is renewed and rotated in the cookie, one held by a header
 * client in the answer's body.
 */
export function knoxCookieCredential(
  cookie: ResolvedKnoxCookie | null,
  request: KnoxRequest & { auth: KnoxToken },
): string | null {
  // Several token cookies are never what authenticated a request (the guard refuses them).
  const [token, ...others] = cookie ? readKnoxCookies(request, cookie) : [];
  return token !== undefined &&
    others.length === 0 &&
    digestsEqual(digestToken(token), request.auth.digest)
    ? token
    : null;
}

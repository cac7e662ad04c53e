import {
  HttpException,
  ServiceUnavailableException,
  UnauthorizedException,
  type Logger,
} from '@nestjs/common';
import { KnoxMessages } from '../knox.messages.js';
import { clientInfoOf, type KnoxRequest } from '../knox-request.js';
import type {
  KnoxIssuedToken,
  KnoxTokenService,
} from '../knox-token.service.js';
import type { KnoxClientInfo } from '../events/knox.events.js';
import type {
  KnoxLoginContext,
  KnoxLoginResponse,
} from '../options/knox-module-options.interface.js';
import type { ResolvedKnoxOptions } from '../options/knox-options.js';
import type { KnoxToken } from '../store/knox-token.entity.js';
import type { KnoxTokenStore } from '../store/knox-token.store.js';
import { isDatabaseOutage } from '../store/knox-outage-log.js';
import { checkKnoxCsrf, sentByBrowser } from '../guard/knox-cookie.js';
import type { KnoxLoginThrottler } from './knox-login-throttler.js';
import {
  readCredentials,
  readLoginBody,
  readTokenName,
  type KnoxCredentials,
} from './knox-login-body.js';
import { readLoginAbilities } from './knox-token-body.js';

const BASIC_REALM = 'Basic realm="api"';

/** What the HTTP flows use of the controller: its services, options and response headers. */
export interface KnoxHttpParts {
  tokens: KnoxTokenService;
  options: ResolvedKnoxOptions;
  throttler: KnoxLoginThrottler;
  logger: Logger;
  /** Where a `validateUser` failure that is a database outage is counted. */
  store: KnoxTokenStore;
  setHeader(response: unknown, name: string, value: string): void;
  /** With the cookie transport on, sets the token cookie (it expires with the token). */
  setTokenCookie(response: unknown, token: string, record: KnoxToken): void;
}

/**
 * `POST login`, from credentials to answer: credentials (Basic or body) → throttle → validate →
 * the per-login hooks → create → the answer. If a response hook (`formatExpiry`,
 * `serializeUser`, `getLoginResponse`) throws, the new token is revoked and the error answered.
 */
export async function knoxLogin(
  parts: KnoxHttpParts,
  request: KnoxRequest,
  response: unknown,
): Promise<unknown> {
  const { options } = parts;
  const inCookie = loginSetsCookie(options, request);
  const body = readLoginBody(request.body);
  const credentials = await challenge(parts, response, () =>
    readCredentials(request.headers.authorization, body),
  );
  const name = readTokenName(body, options.tokenNameMaxLength);
  const requestedAbilities = readLoginAbilities(body, options.loginAbilities);
  const client = clientInfoOf(request);
  await parts.throttler.hit(credentials.username, client.ip, response);
  const user = await challenge(parts, response, () =>
    validateCredentials(parts, credentials, request),
  );
  const context: KnoxLoginContext = { user, request, body };
  const issued = await challenge(parts, response, async () =>
    parts.tokens.create(user, {
      ...(await perLoginOptions(options, context, requestedAbilities)),
      name,
      source: 'login',
      ...client,
    }),
  );
  return answerLogin(parts, issued, context, client, response, inCookie);
}

/**
 * Whether a login answers with the cookie: with the cookie transport, a browser gets its token
 * as the cookie and must come from a trusted origin (403 otherwise: login CSRF, another site
 * must not log the browser into an account of its choosing); a client that is no browser gets
 * the token in the body, as without cookies.
 */
function loginSetsCookie(
  options: ResolvedKnoxOptions,
  request: KnoxRequest,
): boolean {
  const { cookie } = options;
  if (cookie === null || !sentByBrowser(request)) {
    return false;
  }
  checkKnoxCsrf(request, cookie);
  return true;
}

/**
 * The login answer; when it cannot be made (a response hook threw), the new token is revoked
 * and the error answered.
 */
async function answerLogin(
  parts: KnoxHttpParts,
  issued: KnoxIssuedToken,
  context: KnoxLoginContext,
  client: KnoxClientInfo,
  response: unknown,
  inCookie: boolean,
): Promise<unknown> {
  try {
    const answer = await loginResponse(
      parts.options,
      issued.token,
      issued.record,
      context,
      inCookie,
    );
    if (inCookie) {
      parts.setTokenCookie(response, issued.token, issued.record);
    }
    return answer;
  } catch (error) {
    // The client never receives this token: revoke it rather than leave a live token that
    // nobody holds (and that counts toward the user's limit).
    await parts.tokens
      .revoke(issued.record, { reason: 'app', ...client })
      .catch(() => false);
    throw error;
  }
}

/** The expiry as the answers show it: through `formatExpiry`, `null` for never. */
export function formatKnoxExpiry(
  options: ResolvedKnoxOptions,
  expiry: Date | null,
): string | number | null {
  return expiry ? options.formatExpiry(expiry) : null;
}

/** What the app's per-login hooks decide (`undefined`: the module's options). */
async function perLoginOptions(
  options: ResolvedKnoxOptions,
  context: KnoxLoginContext,
  requestedAbilities: string[] | undefined,
) {
  const raw = options.raw;
  const abilities = await raw.getTokenAbilities?.({
    ...context,
    requestedAbilities,
  });
  return {
    ttl: await raw.getTokenTtl?.(context),
    prefix: await raw.getTokenPrefix?.(context),
    limit: await raw.getTokenLimitPerUser?.(context),
    abilities:
      abilities !== undefined ? abilities : (requestedAbilities ?? null),
  };
}

/** The login answer, through `serializeUser` and `getLoginResponse` when the app set them. */
async function loginResponse(
  options: ResolvedKnoxOptions,
  token: string,
  record: KnoxToken,
  context: KnoxLoginContext,
  inCookie: boolean,
): Promise<unknown> {
  const raw = options.raw;
  // A token set as the cookie goes in Set-Cookie only, out of the page's reach.
  const data: KnoxLoginResponse = {
    expiry: formatKnoxExpiry(options, record.expiry),
    ...(inCookie ? {} : { token }),
    id: record.id,
  };
  if (raw.serializeUser) {
    data.user = raw.serializeUser(context.user);
  }
  return raw.getLoginResponse ? raw.getLoginResponse(data, context) : data;
}

/** The user the credentials name: 401 when they do not check out or the user is inactive. */
export async function validateCredentials(
  parts: KnoxHttpParts,
  credentials: KnoxCredentials,
  request: KnoxRequest,
): Promise<unknown> {
  let user: unknown;
  try {
    user = await parts.options.validateUser(
      credentials.username,
      credentials.password,
      request,
    );
  } catch (error) {
    if (error instanceof HttpException) {
      throw error;
    }
    if (isDatabaseOutage(error)) {
      // Counted in the token store's outage log: a few summary lines for an outage.
      parts.store.reportOutage(error);
    } else {
      // With the stack: a bug in the app's own check must not pass for a database outage.
      parts.logger.error(
        `validateUser failed: ${(error as Error)?.message ?? String(error)}`,
        (error as Error)?.stack,
      );
    }
    throw new ServiceUnavailableException(KnoxMessages.UNAVAILABLE);
  }
  if (!user) {
    throw new UnauthorizedException('Invalid username/password.');
  }
  if (!parts.options.isUserActive(user)) {
    throw new UnauthorizedException(KnoxMessages.USER_INACTIVE);
  }
  return user;
}

/** Runs a login step; a 401 from it carries the Basic challenge, as knox's login answers. */
async function challenge<T>(
  parts: KnoxHttpParts,
  response: unknown,
  work: () => T | Promise<T>,
): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof UnauthorizedException) {
      parts.setHeader(response, 'WWW-Authenticate', BASIC_REALM);
    }
    throw error;
  }
}

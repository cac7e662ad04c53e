import {
  HttpException,
  Inject,
  Injectable,
  MethodNotAllowedException,
  type ExecutionContext,
  type NestMiddleware,
} from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import { KnoxGuard } from '../guard/knox.guard.js';
import { KNOX_RESOLVED_OPTIONS } from '../knox.constants.js';
import type { KnoxRequest } from '../knox-request.js';
import type { ResolvedKnoxOptions } from '../options/knox-options.js';
import { setResponseHeader } from '../knox-request.js';

/**
 * The module's routes under its `path`, and the methods each answers, most specific first (a
 * URL is matched against them from its end: `…/tokens/login` is a token id, not `login`).
 */
export const KNOX_ROUTE_METHODS: Readonly<Record<string, readonly string[]>> = {
  'tokens/:id': ['PATCH', 'DELETE'],
  tokens: ['GET', 'POST'],
  login: ['POST'],
  logout: ['POST'],
  logoutall: ['POST'],
  logoutothers: ['POST'],
  refresh: ['POST'],
  rotate: ['POST'],
};

/** Each route of {@link KNOX_ROUTE_METHODS} as a pattern matching the end of a URL path. */
const ROUTE_PATTERNS = Object.keys(KNOX_ROUTE_METHODS).map((route) => ({
  route,
  pattern: new RegExp(`/${route.replace(':id', '[^/]+')}$`),
}));

/** Methods that get a 405 on a route that does not answer them; others fall through (404). */
const REFUSED = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);

/** The full path of one of the module's routes mounted at `path` (e.g. `auth/tokens/:id`). */
export function knoxRoutePath(path: string, route: string): string {
  return `${path}/${route}`.replace(/\/{2,}/g, '/').replace(/^\//, '');
}

/** The full paths of the module's routes mounted at `path`. */
export function knoxRoutePaths(path: string): string[] {
  return Object.keys(KNOX_ROUTE_METHODS).map((route) =>
    knoxRoutePath(path, route),
  );
}

/**
 * The methods `route` (a key of {@link KNOX_ROUTE_METHODS}) answers: `POST tokens` only with
 * personal access tokens on.
 */
export function methodsOf(
  route: string,
  personalAccessTokens: boolean,
): readonly string[] {
  const methods = KNOX_ROUTE_METHODS[route] ?? [];
  return route === 'tokens' && !personalAccessTokens
    ? methods.filter((method) => method !== 'POST')
    : methods;
}

/** The methods the module's route at this URL answers. */
export function allowedMethods(
  url: string,
  personalAccessTokens: boolean,
): readonly string[] {
  const path = url.split('?')[0].replace(/\/+$/, '');
  const route = ROUTE_PATTERNS.find(({ pattern }) => pattern.test(path))?.route;
  return route === undefined ? [] : methodsOf(route, personalAccessTokens);
}

/** Answers 405 `Method "…" not allowed.` with `Allow`. */
export function methodNotAllowed(
  response: unknown,
  method: string,
  allow: readonly string[],
): never {
  setResponseHeader(response, 'Allow', allow.join(', '));
  throw new MethodNotAllowedException(`Method "${method}" not allowed.`);
}

/**
 * Knox's answer to a wrong method on one of the module's routes (`GET /auth/login`): 405 with
 * `Allow`, after authentication (401 first, as knox answers). A middleware on the module's
 * paths rather than a route per method: the routes table (the boot log, the OpenAPI document)
 * lists the real routes only. The token is read and checked by {@link KnoxGuard}, as on the
 * routes themselves. `OPTIONS` (CORS preflights) and unusual methods pass through. Its answers
 * (401, 403, 405, 503) are written with Nest's default error body, not through the app's
 * exception filters.
 */
@Injectable()
export class KnoxMethodNotAllowedMiddleware implements NestMiddleware {
  constructor(
    private readonly guard: KnoxGuard,
    @Inject(KNOX_RESOLVED_OPTIONS)
    private readonly options: ResolvedKnoxOptions,
  ) {}

  async use(
    request: KnoxRequest & { originalUrl?: string; url?: string },
    response: unknown,
    next: () => void,
  ): Promise<void> {
    const method = String(request.method ?? '').toUpperCase();
    const allow = allowedMethods(
      String(request.originalUrl ?? request.url ?? ''),
      this.options.personalAccessTokens !== null,
    );
    const answered =
      allow.includes(method) || (method === 'HEAD' && allow.includes('GET'));
    if (answered || allow.length === 0 || !REFUSED.has(method)) {
      return next();
    }
    try {
      await this.guard.canActivate(httpContextOf(request, response));
      methodNotAllowed(response, method, allow);
    } catch (error) {
      if (!(error instanceof HttpException)) {
        throw error;
      }
      answer(response, error);
    }
  }
}

/**
 * Sends `error` as Nest's default exception filter would (its status and `getResponse()` body),
 * on the platform's native response. Answered here rather than thrown: the Fastify adapter of
 * some Nest 12 releases (12.0.1) fails to reply to an exception thrown by a middleware, and the
 * request would hang.
 */
function answer(response: unknown, error: HttpException): void {
  const res = response as ServerResponse;
  const body = error.getResponse();
  res.statusCode = error.getStatus();
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.end(
    JSON.stringify(
      typeof body === 'string'
        ? { statusCode: error.getStatus(), message: body }
        : body,
    ),
  );
}

/** An HTTP execution context for the guard, outside any route handler. */
function httpContextOf(request: unknown, response: unknown): ExecutionContext {
  const args = [request, response, undefined];
  const http = {
    getRequest: () => request,
    getResponse: () => response,
    getNext: () => undefined,
  };
  const unavailable = () => {
    throw new Error('KnoxMethodNotAllowedMiddleware: an HTTP context only');
  };
  return {
    getType: () => 'http',
    getClass: () => KnoxMethodNotAllowedMiddleware,
    getHandler: () => KnoxMethodNotAllowedMiddleware.prototype.use,
    getArgs: () => args,
    getArgByIndex: (index: number) => args[index],
    switchToHttp: () => http,
    switchToRpc: unavailable,
    switchToWs: unavailable,
  } as unknown as ExecutionContext;
}

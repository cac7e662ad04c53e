import {
  ForbiddenException,
  Inject,
  Injectable,
  UnauthorizedException,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { KnoxMessages } from '../knox.messages.js';
import { KNOX_PUBLIC_KEY, KNOX_RESOLVED_OPTIONS } from '../knox.constants.js';
import {
  KnoxTokenService,
  type KnoxAuthResult,
} from '../knox-token.service.js';
import type { KnoxRequest } from '../options/knox-module-options.interface.js';
import type { ResolvedKnoxOptions } from '../options/knox-options.js';
import { clientInfoOf, setResponseHeader } from '../http/knox-request.util.js';
import type { KnoxToken } from '../store/knox-token.entity.js';
import {
  missingAbilities,
  unmetRequirement,
} from '../abilities/knox-abilities.js';
import { abilityRequirementsOf } from '../abilities/knox-abilities.decorator.js';
import {
  checkKnoxCsrf,
  isCookieToken,
  readKnoxCookie,
} from '../transports/cookie/knox-cookie.js';

const PRINTABLE_HEADER = /^[\x20-\x7e\t]*$/;
const TOKEN_CHARACTERS = /^[\x21-\x7e]+$/;

/**
 * The token each HTTP request was authenticated with, and by which token service. With the guard
 * as `APP_GUARD`, routes that also carry `@UseGuards(KnoxGuard)` (the module's own controller
 * does) would otherwise pay a second query for the same request. It only saves that query: every
 * guard still reads the token its own way, and a different token (another subclass, or headers
 * changed on a reused request object) is authenticated afresh. Only HTTP: a WebSocket "request"
 * (a client, a handshake) lives as long as the connection and must be checked on every message.
 */
const AUTHENTICATED = Symbol('knox.authenticated');

/** What {@link AUTHENTICATED} holds on a request (a property of its own: it dies with it). */
interface Authenticated {
  tokens: KnoxTokenService;
  token: string;
  result: KnoxAuthResult;
}

type MarkedRequest = KnoxRequest & { [AUTHENTICATED]?: Authenticated };

/**
 * Authenticates requests by `Authorization: Token <token>` (or any scheme in
 * `authHeaderPrefix`), and puts the user on `request.user` and the token record on
 * `request.auth`. Every failure is a 401 with `WWW-Authenticate`; a database outage is a 503.
 *
 * Use it per route (`@UseGuards(KnoxGuard)`) or for the whole app as `APP_GUARD` together with
 * {@link KnoxPublic}. Subclass it and override `getRequest` / `extractToken` to read the token
 * from elsewhere (a cookie, a GraphQL or WebSocket context).
 *
 * @example
 * @UseGuards(KnoxGuard)
 * @Get('me')
 * me(@KnoxUser() user: User) { return user; }
 */
@Injectable()
export class KnoxGuard implements CanActivate {
  constructor(
    protected readonly tokens: KnoxTokenService,
    protected readonly reflector: Reflector,
    @Inject(KNOX_RESOLVED_OPTIONS)
    protected readonly options: ResolvedKnoxOptions,
  ) {}

  /** Lets public routes through; otherwise authenticates the request or throws 401 / 503. */
  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (this.isPublic(context)) {
      return true;
    }
    const request = this.getRequest(context);
    const http = context.getType() === 'http';
    try {
      const token = this.extractToken(request);
      if (token === null || token === undefined) {
        throw new UnauthorizedException(KnoxMessages.NOT_PROVIDED);
      }
      const seen = http ? (request as MarkedRequest)[AUTHENTICATED] : undefined;
      const result =
        seen?.tokens === this.tokens && seen.token === token
          ? seen.result
          : await this.tokens.authenticate(token, clientInfoOf(request));
      request.user = result.user;
      request.auth = result.token;
      if (http) {
        markAuthenticated(request, { tokens: this.tokens, token, result });
      }
      // The abilities came with the row: checking them costs no query.
      this.checkAbilities(context, result.token);
      return true;
    } catch (error) {
      if (error instanceof UnauthorizedException) {
        this.setAuthenticateHeader(context);
      }
      throw error;
    }
  }

  /**
   * Enforces `@KnoxAbilities` / `@KnoxAnyAbility` of the route and its controller on the token
   * that authenticated the request: 403 with `WWW-Authenticate: <scheme>
   * error="insufficient_scope", scope="<the abilities required>"` (RFC 6750 §3.1) when one is
   * not met.
   */
  protected checkAbilities(context: ExecutionContext, token: KnoxToken): void {
    const unmet = unmetRequirement(
      token.abilities,
      abilityRequirementsOf(context.getHandler(), context.getClass()),
    );
    if (!unmet) {
      return;
    }
    if (context.getType() === 'http') {
      setResponseHeader(
        context.switchToHttp().getResponse(),
        'WWW-Authenticate',
        `${this.options.authSchemes[0]} error="insufficient_scope", scope="${unmet.abilities.join(' ')}"`,
      );
    }
    throw new ForbiddenException(
      unmet.mode === 'all'
        ? KnoxMessages.MISSING_ABILITIES(
            missingAbilities(token.abilities, unmet.abilities),
          )
        : KnoxMessages.MISSING_ANY_ABILITY(unmet.abilities),
    );
  }

  /** Whether the route is marked {@link KnoxPublic}. */
  protected isPublic(context: ExecutionContext): boolean {
    return (
      this.reflector.getAllAndOverride<boolean | undefined>(KNOX_PUBLIC_KEY, [
        context.getHandler(),
        context.getClass(),
      ]) === true
    );
  }

  /** The request to authenticate. Override for GraphQL or WebSocket contexts. */
  protected getRequest(context: ExecutionContext): KnoxRequest {
    return context.switchToHttp().getRequest<KnoxRequest>();
  }

  /**
   * Reads the token from the request: `null` when there is none for this guard (no
   * `Authorization` header, or another scheme, and no token cookie), which is answered 401;
   * throws 401 for a malformed header, 403 for a cookie-authenticated unsafe request from an
   * untrusted origin. Called on every check, also when another KnoxGuard already authenticated
   * the request: only a token equal to the one that did skips the database.
   */
  protected extractToken(request: KnoxRequest): string | null {
    return this.headerToken(request) ?? this.cookieToken(request);
  }

  /**
   * With the cookie transport on, the token cookie (when there is no `Authorization` token);
   * a request with an unsafe method must then pass the Origin check (403 otherwise).
   */
  private cookieToken(request: KnoxRequest): string | null {
    const cookie = this.options.cookie;
    const token = cookie ? readKnoxCookie(request, cookie) : null;
    if (!cookie || token === null) {
      return null;
    }
    if (!isCookieToken(token)) {
      throw new UnauthorizedException(KnoxMessages.INVALID_TOKEN);
    }
    checkKnoxCsrf(request, cookie);
    return token;
  }

  private headerToken(request: KnoxRequest): string | null {
    const header = request.headers?.authorization;
    if (typeof header !== 'string') {
      return null;
    }
    const parts = header.split(/[ \t]+/).filter((part) => part.length > 0);
    if (parts.length === 0) {
      return null;
    }
    const scheme = parts[0].toLowerCase();
    if (!this.options.authSchemes.some((s) => s.toLowerCase() === scheme)) {
      return null;
    }
    if (!PRINTABLE_HEADER.test(header)) {
      throw new UnauthorizedException(KnoxMessages.MALFORMED_HEADER);
    }
    if (parts.length === 1) {
      throw new UnauthorizedException(KnoxMessages.NO_CREDENTIALS);
    }
    if (parts.length > 2) {
      throw new UnauthorizedException(KnoxMessages.SPACES);
    }
    if (!TOKEN_CHARACTERS.test(parts[1])) {
      throw new UnauthorizedException(KnoxMessages.INVALID_TOKEN);
    }
    return parts[1];
  }

  /** Sends `WWW-Authenticate: <first scheme>` with a 401. */
  protected setAuthenticateHeader(context: ExecutionContext): void {
    if (context.getType() !== 'http') {
      return;
    }
    setResponseHeader(
      context.switchToHttp().getResponse(),
      'WWW-Authenticate',
      this.options.authSchemes[0],
    );
  }
}

/**
 * Records on the request which token authenticated it: a symbol-keyed, non-enumerable property
 * (not a WeakMap: a WeakMap entry per request made every request object survive to a major
 * garbage collection; a property goes with the request).
 */
function markAuthenticated(request: KnoxRequest, value: Authenticated): void {
  Object.defineProperty(request, AUTHENTICATED, {
    value,
    configurable: true,
    writable: true,
    enumerable: false,
  });
}

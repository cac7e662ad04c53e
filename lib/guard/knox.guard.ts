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
  cachedAuthentication,
  type KnoxAuthResult,
} from '../knox-token.service.js';
import type { KnoxRequest } from '../knox-request.js';
import type { ResolvedKnoxOptions } from '../options/knox-options.js';
import { clientInfoOf, setResponseHeader } from '../knox-request.js';
import type { KnoxToken } from '../store/knox-token.entity.js';
import {
  missingAbilities,
  unmetRequirement,
  type KnoxAbilityRequirement,
} from '../abilities/knox-abilities.js';
import { abilityRequirementsOf } from '../abilities/knox-abilities.decorator.js';
import { digestToken, digestsEqual } from '../tokens/knox-token-format.js';
import { checkKnoxCsrf, isCookieToken, readKnoxCookie } from './knox-cookie.js';

const PRINTABLE_HEADER = /^[\x20-\x7e\t]*$/;
const TOKEN_CHARACTERS = /^[\x21-\x7e]+$/;

/**
 * The token service that authenticated a record, marked on the record the guard puts on
 * `request.auth`. With the guard as `APP_GUARD`, routes that also carry `@UseGuards(KnoxGuard)`
 * (the module's own controller does) would otherwise authenticate the same request twice. It
 * only saves that work: every guard still reads the token its own way, and a different token
 * (another subclass, headers changed on a reused request object) or another module's service is
 * authenticated afresh. Only HTTP: a WebSocket "request" (a client, a handshake) lives as long as
 * the connection and must be checked on every message.
 *
 * On the record, not the request: the record is a fresh object per request, small and cheap to
 * extend, where a property added to an Express request costs a slow store (microseconds). A
 * symbol: neither serialized nor listed by `Object.keys`.
 */
const AUTHENTICATED_BY = Symbol('knox.authenticatedBy');

type MarkedToken = KnoxToken & { [AUTHENTICATED_BY]?: symbol };

/**
 * What the mark holds: an opaque id per token service, not the service itself (a logged record
 * would print the whole service graph).
 */
const serviceIds = new WeakMap<object, symbol>();

function serviceIdOf(tokens: object): symbol {
  let id = serviceIds.get(tokens);
  if (id === undefined) {
    id = Symbol('KnoxTokenService');
    serviceIds.set(tokens, id);
  }
  return id;
}

/**
 * One authentication shared by every check on one scope (see
 * {@link KnoxGuard.sharedAuthenticationScope}): the token service's mark, the token it was
 * for, and its outcome, settled or in flight.
 */
interface SharedAuthentication {
  mark: symbol;
  token: string;
  result: Promise<KnoxAuthResult>;
}

/** By scope (a GraphQL operation's HTTP request): dropped with it. */
const sharedAuthentications = new WeakMap<object, SharedAuthentication>();

/** What {@link KnoxGuard} reads off a route's metadata. */
interface RouteRules {
  isPublic: boolean;
  abilities: KnoxAbilityRequirement[];
}

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
  /** {@link rulesOf}, by handler then controller class (route metadata is fixed at boot). */
  private readonly routeRules = new WeakMap<object, Map<object, RouteRules>>();
  private schemeSets?: { exact: Set<string>; lower: Set<string> };
  /** {@link serviceIdOf} the guard's token service. */
  private serviceId?: symbol;

  constructor(
    protected readonly tokens: KnoxTokenService,
    protected readonly reflector: Reflector,
    @Inject(KNOX_RESOLVED_OPTIONS)
    protected readonly options: ResolvedKnoxOptions,
  ) {}

  /**
   * Lets public routes through; otherwise authenticates the request, or rejects with 401 / 403
   * / 503. Answers `true` at once, without a promise, when nothing needs waiting for: a public
   * route, a token the cache holds with no write due, or one another KnoxGuard already
   * authenticated on this request (Nest accepts both; call it with `await`). A refusal is always
   * a rejected promise.
   */
  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    if (this.isPublic(context)) {
      return true;
    }
    const request = this.getRequest(context);
    const http = context.getType() === 'http';
    try {
      const token = this.requiredToken(request);
      const scope = http
        ? undefined
        : this.sharedAuthenticationScope(context, request);
      if (scope) {
        return this.admitShared(context, request, token, scope);
      }
      const known =
        this.alreadyAuthenticated(request, token, http) ??
        cachedAuthentication(this.tokens, token);
      if (known) {
        this.admit(context, request, http, known);
        return true;
      }
      return this.authenticateAndAdmit(context, request, http, token);
    } catch (error) {
      return Promise.reject(this.refused(context, error));
    }
  }

  /**
   * The object on which every check of one operation shares one authentication, or
   * `undefined` (the default outside HTTP: each check authenticates, as a WebSocket message
   * must). `KnoxGqlGuard` answers a GraphQL query's or mutation's HTTP request, so that the
   * guarded fields of one operation (its aliases) cost one authentication per token. The scope
   * must live no longer than the operation: the outcome is reused as long as the scope lives.
   */
  protected sharedAuthenticationScope(
    _context: ExecutionContext,
    _request: KnoxRequest,
  ): object | undefined {
    return undefined;
  }

  /** Admits with the scope's authentication of `token`, running it on the first check. */
  private async admitShared(
    context: ExecutionContext,
    request: KnoxRequest,
    token: string,
    scope: object,
  ): Promise<boolean> {
    const mark = this.markOf();
    let shared = sharedAuthentications.get(scope);
    // Both tokens come from the same request: `===` compares no secret with a guess.
    if (!shared || shared.mark !== mark || shared.token !== token) {
      shared = { mark, token, result: this.authenticateOnce(request, token) };
      sharedAuthentications.set(scope, shared);
    }
    try {
      this.admit(context, request, false, await shared.result);
      return true;
    } catch (error) {
      throw this.refused(context, error);
    }
  }

  private async authenticateOnce(
    request: KnoxRequest,
    token: string,
  ): Promise<KnoxAuthResult> {
    return (
      cachedAuthentication(this.tokens, token) ??
      this.tokens.authenticate(token, clientInfoOf(request))
    );
  }

  /** The path through the database (a cache miss, or a write due). */
  private async authenticateAndAdmit(
    context: ExecutionContext,
    request: KnoxRequest,
    http: boolean,
    token: string,
  ): Promise<boolean> {
    try {
      const result = await this.tokens.authenticate(
        token,
        clientInfoOf(request),
      );
      this.admit(context, request, http, result);
      return true;
    } catch (error) {
      throw this.refused(context, error);
    }
  }

  /** The request's token; 401 when there is none. */
  private requiredToken(request: KnoxRequest): string {
    const token = this.extractToken(request);
    if (token === null || token === undefined) {
      throw new UnauthorizedException(KnoxMessages.NOT_PROVIDED);
    }
    return token;
  }

  /**
   * Puts the user and token on the request, records them for other KnoxGuards on the same
   * request, and checks the route's abilities (they came with the row: no query).
   */
  private admit(
    context: ExecutionContext,
    request: KnoxRequest,
    http: boolean,
    result: KnoxAuthResult,
  ): void {
    request.user = result.user;
    request.auth = result.token;
    if (http) {
      (result.token as MarkedToken)[AUTHENTICATED_BY] = this.markOf();
    }
    this.checkAbilities(context, result.token);
  }

  /** A failure, to be thrown: a 401 also gets `WWW-Authenticate`. */
  private refused(context: ExecutionContext, error: unknown): Error {
    if (error instanceof UnauthorizedException) {
      this.setAuthenticateHeader(context);
    }
    return error as Error;
  }

  /** What another KnoxGuard of the same service found for this very token on this request. */
  private alreadyAuthenticated(
    request: KnoxRequest,
    token: string,
    http: boolean,
  ): KnoxAuthResult | undefined {
    const record = http ? (request.auth as MarkedToken | undefined) : undefined;
    return record?.[AUTHENTICATED_BY] === this.markOf() &&
      typeof record.digest === 'string' &&
      digestsEqual(record.digest, digestToken(token))
      ? { user: record.user, token: record }
      : undefined;
  }

  private markOf(): symbol {
    return (this.serviceId ??= serviceIdOf(this.tokens));
  }

  /** The public flag and ability requirements of a route, read once per handler and class. */
  private rulesOf(context: ExecutionContext): RouteRules {
    const handler = context.getHandler();
    const controller = context.getClass();
    let byClass = this.routeRules.get(handler);
    if (!byClass) {
      byClass = new Map();
      this.routeRules.set(handler, byClass);
    }
    let rules = byClass.get(controller);
    if (!rules) {
      rules = {
        isPublic:
          this.reflector.getAllAndOverride<boolean | undefined>(
            KNOX_PUBLIC_KEY,
            [handler, controller],
          ) === true,
        abilities: abilityRequirementsOf(handler, controller),
      };
      byClass.set(controller, rules);
    }
    return rules;
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
      this.rulesOf(context).abilities,
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
    return this.rulesOf(context).isPublic;
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
    // The usual shape first: a scheme as configured, one space, a token.
    const space = header.indexOf(' ');
    if (space > 0 && this.schemes().exact.has(header.slice(0, space))) {
      const token = header.slice(space + 1);
      if (TOKEN_CHARACTERS.test(token)) {
        return token;
      }
    }
    return this.parseHeader(header);
  }

  /** Any other `Authorization` header: another scheme (null), or one to refuse with a reason. */
  private parseHeader(header: string): string | null {
    const parts = header.split(/[ \t]+/).filter((part) => part.length > 0);
    if (
      parts.length === 0 ||
      !this.schemes().lower.has(parts[0].toLowerCase())
    ) {
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

  /** `authSchemes` as written and lowercased (schemes compare case-insensitively). */
  private schemes(): { exact: Set<string>; lower: Set<string> } {
    return (this.schemeSets ??= {
      exact: new Set(this.options.authSchemes),
      lower: new Set(this.options.authSchemes.map((s) => s.toLowerCase())),
    });
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

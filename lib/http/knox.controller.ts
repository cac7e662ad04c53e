import {
  BadRequestException,
  Controller,
  Delete,
  ForbiddenException,
  Get,
  Header,
  HttpCode,
  HttpException,
  Injectable,
  InternalServerErrorException,
  Inject,
  Logger,
  Param,
  Patch,
  Post,
  Req,
  Res,
  ServiceUnavailableException,
  UnauthorizedException,
  UseGuards,
  type Type,
} from '@nestjs/common';
import { KnoxMessages } from '../knox.messages.js';
import { HttpAdapterHost } from '@nestjs/core';
import { KNOX_RESOLVED_OPTIONS } from '../knox.constants.js';
import { KnoxClock } from '../knox-clock.js';
import { KnoxTokenStore } from '../store/knox-token.store.js';
import { isDatabaseOutage } from '../store/knox-outage-log.js';
import { KnoxPublic } from '../decorators/knox-public.decorator.js';
import { KnoxGuard } from '../auth/knox.guard.js';
import {
  KnoxTokenService,
  type KnoxIssuedToken,
} from '../knox-token.service.js';
import { KnoxLoginThrottler } from './knox-login-throttler.js';
import type { KnoxToken } from '../store/knox-token.entity.js';
import type { KnoxClientInfo } from '../events/knox.events.js';
import type {
  KnoxLoginContext,
  KnoxLoginResponse,
  KnoxRequest,
} from '../options/knox-module-options.interface.js';
import type { ResolvedKnoxOptions } from '../options/knox-options.js';
import { clientInfoOf } from './knox-request.util.js';
import { methodNotAllowed, methodsOf } from './knox-method-not-allowed.js';
import {
  checkKnoxCsrf,
  sentByBrowser,
  knoxClearedCookie,
  knoxTokenCookie,
  readKnoxCookies,
} from '../transports/cookie/knox-cookie.js';
import { digestToken, digestsEqual } from '../tokens/knox-token-format.js';
import {
  readCredentials,
  readLoginBody,
  readTokenName,
  type KnoxCredentials,
} from './knox-login-body.js';
import {
  readLoginAbilities,
  readPersonalTokenBody,
  readRename,
  type KnoxPersonalTokenRequest,
} from './knox-token-body.js';
import { missingAbilities, namesExactly } from '../abilities/knox-abilities.js';
import { personalTokenCap } from '../sessions/knox-session-rules.js';

const BASIC_REALM = 'Basic realm="api"';

/** A token as `GET {path}/tokens` lists it: never the digest. */
export interface KnoxSessionView {
  /** The token's public id (for `DELETE {path}/tokens/:id`). */
  id: string;
  /** The name the client gave the token at login. */
  name: string | null;
  /** The user agent of the login request. */
  userAgent: string | null;
  /** The client IP of the login request. */
  ip: string | null;
  /** When the session began (kept across rotations). */
  created: Date;
  /** When the token was last used (written at most once per `lastUsedUpdateInterval`). */
  lastUsedAt: Date | null;
  /** The client IP of that last use (written with `lastUsedAt`). */
  lastUsedIp: string | null;
  /** When the token stops working; `null` never. */
  expiry: Date | null;
  /** What the token may do; `null` for every ability. */
  abilities: string[] | null;
  /** Whether this is the token making the request. */
  current: boolean;
}

/** The answer of `POST {path}/tokens`: the new personal access token, shown this once. */
export interface KnoxPersonalTokenResponse {
  /** The token's public id. */
  id: string;
  /** The token in plaintext. This is the only time it is ever shown. */
  token: string;
  /** The expiry, formatted by `formatExpiry`, or `null` for a token that never expires. */
  expiry: string | number | null;
  /** What the token may do. */
  abilities: string[];
  /** The name it was given. */
  name: string;
}

type AuthenticatedRequest = KnoxRequest & { auth: KnoxToken; user: unknown };

/**
 * The HTTP API: `login`, `logout`, `logoutall`, and the per-device session routes. Mounted by
 * {@link KnoxModule} at `path` (default `auth`) unless `controller: false`. To mount it yourself
 * (e.g. with other decorators, or beside your own routes), set `controller: false` and extend it:
 *
 * @example
 * @Controller('account/session')
 * export class SessionController extends KnoxController {}
 */
@Injectable()
export class KnoxController {
  private readonly logger = new Logger('KnoxController');

  /** Sets headers and reads methods the same way on Express and Fastify. */
  @Inject(HttpAdapterHost)
  protected readonly adapterHost: HttpAdapterHost;

  /** Where a `validateUser` failure that is a database outage is counted. */
  @Inject(KnoxTokenStore)
  protected readonly store: KnoxTokenStore;

  /** The module's clock: a personal access token's cap counts from its creation. */
  @Inject(KnoxClock)
  protected readonly clock: KnoxClock;

  constructor(
    protected readonly tokens: KnoxTokenService,
    @Inject(KNOX_RESOLVED_OPTIONS)
    protected readonly options: ResolvedKnoxOptions,
    protected readonly throttler: KnoxLoginThrottler,
  ) {}

  /**
   * `POST login`: credentials by HTTP Basic or JSON body; answers the token once. If a response
   * hook (`formatExpiry`, `serializeUser`, `getLoginResponse`) throws, the new token is revoked
   * and the error answered.
   */
  @Post('login')
  @KnoxPublic()
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  @Header('Pragma', 'no-cache')
  async login(
    @Req() request: KnoxRequest,
    @Res({ passthrough: true }) response: unknown,
  ): Promise<unknown> {
    const inCookie = this.loginSetsCookie(request);
    const body = readLoginBody(request.body);
    const credentials = await this.challenge(response, () =>
      readCredentials(request.headers.authorization, body),
    );
    const name = readTokenName(body, this.options.tokenNameMaxLength);
    const requestedAbilities = readLoginAbilities(
      body,
      this.options.loginAbilities,
    );
    const client = clientInfoOf(request);
    await this.throttler.hit(credentials.username, client.ip, response);
    const user = await this.challenge(response, () =>
      this.validate(credentials, request),
    );
    const context: KnoxLoginContext = { user, request, body };
    const issued = await this.challenge(response, async () =>
      this.tokens.create(user, {
        ...(await this.perLoginOptions(context, requestedAbilities)),
        name,
        source: 'login',
        ...client,
      }),
    );
    return this.answerLogin(issued, context, client, response, inCookie);
  }

  /** `POST logout`: revokes the token that authenticated this request. */
  @Post('logout')
  @UseGuards(KnoxGuard)
  @HttpCode(204)
  async logout(
    @Req() request: AuthenticatedRequest,
    @Res({ passthrough: true }) response: unknown,
  ): Promise<void> {
    await this.tokens.revoke(request.auth, {
      reason: 'logout',
      ...clientInfoOf(request),
    });
    this.clearTokenCookie(request, response);
  }

  /** `POST logoutall`: revokes all the user's tokens. */
  @Post('logoutall')
  @UseGuards(KnoxGuard)
  @HttpCode(204)
  async logoutAll(
    @Req() request: AuthenticatedRequest,
    @Res({ passthrough: true }) response: unknown,
  ): Promise<void> {
    await this.asSessionHolder(request, response, () =>
      this.tokens.revokeAll(this.tokens.userIdOf(request.user), {
        reason: 'logout-all',
        actor: request.auth,
        ...clientInfoOf(request),
      }),
    );
    this.clearTokenCookie(request, response);
  }

  /** `POST logoutothers`: revokes all the user's tokens except this one. */
  @Post('logoutothers')
  @UseGuards(KnoxGuard)
  @HttpCode(204)
  async logoutOthers(
    @Req() request: AuthenticatedRequest,
    @Res({ passthrough: true }) response: unknown,
  ): Promise<void> {
    await this.asSessionHolder(request, response, () =>
      this.tokens.revokeAll(this.tokens.userIdOf(request.user), {
        except: request.auth.id,
        actor: request.auth,
        reason: 'logout-others',
        ...clientInfoOf(request),
      }),
    );
  }

  /** `GET tokens`: the user's live tokens. */
  @Get('tokens')
  @UseGuards(KnoxGuard)
  async listTokens(
    @Req() request: AuthenticatedRequest,
  ): Promise<KnoxSessionView[]> {
    const tokens = await this.tokens.list(this.tokens.userIdOf(request.user));
    return tokens.map((token) => sessionView(token, request.auth));
  }

  /**
   * `POST tokens`: a personal access token `{ name, abilities, password, ttl? }` for the calling
   * user, answered once. Needs the account password again (checked by `validateUser`, throttled
   * as logins are), or a calling token that names `personalAccessTokens.createAbility`; the new
   * token's abilities must be held by the calling token.
   */
  @Post('tokens')
  @UseGuards(KnoxGuard)
  @HttpCode(201)
  @Header('Cache-Control', 'no-store')
  @Header('Pragma', 'no-cache')
  async createToken(
    @Req() request: AuthenticatedRequest,
    @Res({ passthrough: true }) response: unknown,
  ): Promise<KnoxPersonalTokenResponse> {
    const settings = this.options.personalAccessTokens;
    if (!settings) {
      return methodNotAllowed(response, 'POST', methodsOf('tokens', false));
    }
    return this.asSessionHolder(request, response, async () => {
      const asked = readPersonalTokenBody(
        request.body,
        this.options.tokenNameMaxLength,
        settings.maxTtl,
      );
      const byPassword = await this.checkMayCreate(
        request,
        response,
        asked,
        settings,
      );
      const issued = await this.tokens.create(request.user, {
        name: asked.name,
        abilities: asked.abilities,
        ttl: asked.ttl,
        maxExpiry: personalTokenCap(
          this.clock.now(),
          settings.maxTtl,
          byPassword ? null : request.auth,
        ),
        actor: request.auth,
        source: 'personal-access-token',
        ...clientInfoOf(request),
      });
      return {
        id: issued.record.id,
        token: issued.token,
        expiry: this.formatExpiry(issued.record.expiry),
        abilities: asked.abilities,
        name: asked.name,
      };
    });
  }

  /** `PATCH tokens/:id` `{ name }`: renames one of the user's tokens (`null` clears the name). */
  @Patch('tokens/:id')
  @UseGuards(KnoxGuard)
  async renameToken(
    @Req() request: AuthenticatedRequest,
    @Param('id') id: string,
    @Res({ passthrough: true }) response: unknown,
  ): Promise<KnoxSessionView> {
    return this.asSessionHolder(request, response, async () => {
      const name = readRename(request.body, this.options.tokenNameMaxLength);
      const token = await this.tokens.rename(
        this.tokens.userIdOf(request.user),
        id,
        name,
        { actor: request.auth },
      );
      return sessionView(token, request.auth);
    });
  }

  /** `DELETE tokens/:id`: revokes one of the user's tokens. */
  @Delete('tokens/:id')
  @UseGuards(KnoxGuard)
  @HttpCode(204)
  async revokeToken(
    @Req() request: AuthenticatedRequest,
    @Param('id') id: string,
    @Res({ passthrough: true }) response: unknown,
  ): Promise<void> {
    await this.asSessionHolder(request, response, () =>
      this.tokens.revokeById(this.tokens.userIdOf(request.user), id, {
        reason: 'revoked-by-id',
        actor: request.auth,
        ...clientInfoOf(request),
      }),
    );
  }

  /** `POST refresh`: extends this token's expiry now. */
  @Post('refresh')
  @UseGuards(KnoxGuard)
  @HttpCode(200)
  async refresh(
    @Req() request: AuthenticatedRequest,
    @Res({ passthrough: true }) response: unknown,
  ): Promise<{ expiry: string | number | null }> {
    const expiry = await this.asSessionHolder(request, response, () =>
      this.tokens.refresh(request.auth, clientInfoOf(request)),
    );
    this.renewTokenCookie(request, response, expiry);
    return { expiry: this.formatExpiry(expiry) };
  }

  /** `POST rotate`: a new token replaces this one. */
  @Post('rotate')
  @UseGuards(KnoxGuard)
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  @Header('Pragma', 'no-cache')
  async rotate(
    @Req() request: AuthenticatedRequest,
    @Res({ passthrough: true }) response: unknown,
  ): Promise<KnoxLoginResponse> {
    const issued = await this.asSessionHolder(request, response, () =>
      this.tokens.rotate(request.auth, clientInfoOf(request)),
    );
    // A session held in the cookie gets its new token in the cookie, out of the page's reach.
    const inCookie = this.cookieCredential(request) !== null;
    if (inCookie) {
      this.setTokenCookie(response, issued.token, issued.record);
    }
    return {
      expiry: this.formatExpiry(issued.record.expiry),
      ...(inCookie ? {} : { token: issued.token }),
      id: issued.record.id,
    };
  }

  /**
   * Runs a session operation for the token holder: a token retired by a rotation (in its grace
   * period, kept for in-flight reads) is refused, and so is one that was retired, revoked or
   * expired while the request waited; those 401s carry `WWW-Authenticate` as the guard's do.
   */
  private async asSessionHolder<T>(
    request: AuthenticatedRequest,
    response: unknown,
    work: () => Promise<T>,
  ): Promise<T> {
    try {
      if (request.auth.retiredAt) {
        throw new UnauthorizedException(KnoxMessages.INVALID_TOKEN);
      }
      return await work();
    } catch (error) {
      if (error instanceof UnauthorizedException) {
        this.setHeader(
          response,
          'WWW-Authenticate',
          this.options.authSchemes[0],
        );
      }
      throw error;
    }
  }

  /**
   * The login answer; when it cannot be made (a response hook threw), the new token is revoked
   * and the error answered.
   */
  /**
   * Whether a login answers with the cookie: with the cookie transport, a browser gets its token
   * as the cookie and must come from a trusted origin (403 otherwise: login CSRF, another site
   * must not log the browser into an account of its choosing); a client that is no browser gets
   * the token in the body, as without cookies.
   */
  private loginSetsCookie(request: KnoxRequest): boolean {
    const { cookie } = this.options;
    if (cookie === null || !sentByBrowser(request)) {
      return false;
    }
    checkKnoxCsrf(request, cookie);
    return true;
  }

  private async answerLogin(
    issued: KnoxIssuedToken,
    context: KnoxLoginContext,
    client: KnoxClientInfo,
    response: unknown,
    inCookie: boolean,
  ): Promise<unknown> {
    try {
      const answer = await this.loginResponse(
        issued.token,
        issued.record,
        context,
        inCookie,
      );
      if (inCookie) {
        this.setTokenCookie(response, issued.token, issued.record);
      }
      return answer;
    } catch (error) {
      // The client never receives this token: revoke it rather than leave a live token that
      // nobody holds (and that counts toward the user's limit).
      await this.tokens
        .revoke(issued.record, { reason: 'app', ...client })
        .catch(() => false);
      throw error;
    }
  }

  /**
   * Whether the caller may create this personal access token: 403 for abilities its own token
   * lacks; then the password again, unless its token names `createAbility` (400 without both).
   * Resolves to whether the password was given (`false`: the calling token's ability).
   */
  private async checkMayCreate(
    request: AuthenticatedRequest,
    response: unknown,
    asked: KnoxPersonalTokenRequest,
    settings: { createAbility: string | null },
  ): Promise<boolean> {
    const beyond = missingAbilities(request.auth.abilities, asked.abilities);
    if (beyond.length > 0) {
      throw new ForbiddenException(
        KnoxMessages.ABILITIES_BEYOND_CALLER(beyond),
      );
    }
    if (asked.password !== undefined) {
      await this.reauthenticate(request, response, asked.password);
      return true;
    }
    if (
      settings.createAbility === null ||
      !namesExactly(request.auth.abilities, settings.createAbility)
    ) {
      throw new BadRequestException(KnoxMessages.PASSWORD_REQUIRED);
    }
    return false;
  }

  private formatExpiry(expiry: Date | null): string | number | null {
    return expiry ? this.options.formatExpiry(expiry) : null;
  }

  /** What the app's per-login hooks decide (`undefined`: the module's options). */
  private async perLoginOptions(
    context: KnoxLoginContext,
    requestedAbilities: string[] | undefined,
  ) {
    const raw = this.options.raw;
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

  /**
   * Checks the calling user's password again (`validateUser` with `getUsername(user)`),
   * throttled as logins are: 403 when it is wrong or names another user.
   */
  private async reauthenticate(
    request: AuthenticatedRequest,
    response: unknown,
    password: string,
  ): Promise<void> {
    const username = this.options.getUsername(request.user);
    if (typeof username !== 'string' || username.length === 0) {
      this.logger.error(
        'POST tokens: the user has no `username` or `email`; set the `getUsername(user)` option to give validateUser the username.',
      );
      throw new InternalServerErrorException();
    }
    await this.throttler.hit(username, clientInfoOf(request).ip, response);
    let user: unknown;
    try {
      user = await this.validate({ username, password }, request);
    } catch (error) {
      // A wrong password is not a bad token: 403, so that clients keep their token.
      if (error instanceof UnauthorizedException) {
        throw new ForbiddenException(KnoxMessages.WRONG_PASSWORD);
      }
      throw error;
    }
    if (
      String(this.tokens.userIdOf(user)) !==
      String(this.tokens.userIdOf(request.user))
    ) {
      throw new ForbiddenException(KnoxMessages.WRONG_PASSWORD);
    }
  }

  /** The login answer, through `serializeUser` and `getLoginResponse` when the app set them. */
  private async loginResponse(
    token: string,
    record: KnoxToken,
    context: KnoxLoginContext,
    inCookie: boolean,
  ): Promise<unknown> {
    const raw = this.options.raw;
    // A token set as the cookie goes in Set-Cookie only, out of the page's reach.
    const data: KnoxLoginResponse = {
      expiry: this.formatExpiry(record.expiry),
      ...(inCookie ? {} : { token }),
      id: record.id,
    };
    if (raw.serializeUser) {
      data.user = raw.serializeUser(context.user);
    }
    return raw.getLoginResponse ? raw.getLoginResponse(data, context) : data;
  }

  /** With the cookie transport on, sets the token cookie (it expires with the token). */
  private setTokenCookie(
    response: unknown,
    token: string,
    record: KnoxToken,
  ): void {
    if (this.options.cookie) {
      const expires = this.options.autoRefresh ? null : record.expiry;
      this.setHeader(
        response,
        'Set-Cookie',
        knoxTokenCookie(this.options.cookie, token, expires),
      );
    }
  }

  /**
   * Clears the token cookie when it is what authenticated the request (its token is revoked). A
   * logout by `Authorization` header leaves the cookie alone: it may hold another session (even
   * another user's), which this request neither proved nor revoked.
   */
  private clearTokenCookie(
    request: AuthenticatedRequest,
    response: unknown,
  ): void {
    if (this.options.cookie && this.cookieCredential(request) !== null) {
      this.setHeader(
        response,
        'Set-Cookie',
        knoxClearedCookie(this.options.cookie),
      );
    }
  }

  /**
   * After a refresh of a token that came in the cookie, sets the cookie again with the new expiry
   * (with `autoRefresh` the cookie has no `Expires`, so there is nothing to move).
   */
  private renewTokenCookie(
    request: AuthenticatedRequest,
    response: unknown,
    expiry: Date | null,
  ): void {
    const token = this.cookieCredential(request);
    if (token !== null && !this.options.autoRefresh) {
      this.setHeader(
        response,
        'Set-Cookie',
        knoxTokenCookie(this.options.cookie!, token, expiry),
      );
    }
  }

  /**
   * The token cookie when it is what authenticated this request (not an `Authorization` header):
   * a session held in the cookie is renewed and rotated in the cookie, one held by a header
   * client in the answer's body.
   */
  private cookieCredential(request: AuthenticatedRequest): string | null {
    const cookie = this.options.cookie;
    // Several token cookies are never what authenticated a request (the guard refuses them).
    const [token, ...others] = cookie ? readKnoxCookies(request, cookie) : [];
    return token !== undefined &&
      others.length === 0 &&
      digestsEqual(digestToken(token), request.auth.digest)
      ? token
      : null;
  }

  /** The user the credentials name: 401 when they do not check out or the user is inactive. */
  private async validate(
    credentials: KnoxCredentials,
    request: KnoxRequest,
  ): Promise<unknown> {
    let user: unknown;
    try {
      user = await this.options.validateUser(
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
        this.store.reportOutage(error);
      } else {
        // With the stack: a bug in the app's own check must not pass for a database outage.
        this.logger.error(
          `validateUser failed: ${(error as Error)?.message ?? String(error)}`,
          (error as Error)?.stack,
        );
      }
      throw new ServiceUnavailableException(KnoxMessages.UNAVAILABLE);
    }
    if (!user) {
      throw new UnauthorizedException('Invalid username/password.');
    }
    if (!this.options.isUserActive(user)) {
      throw new UnauthorizedException(KnoxMessages.USER_INACTIVE);
    }
    return user;
  }

  /** Runs a login step; a 401 from it carries the Basic challenge, as knox's login answers. */
  private async challenge<T>(
    response: unknown,
    work: () => T | Promise<T>,
  ): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof UnauthorizedException) {
        this.setHeader(response, 'WWW-Authenticate', BASIC_REALM);
      }
      throw error;
    }
  }

  private setHeader(response: unknown, name: string, value: string): void {
    this.adapterHost.httpAdapter.setHeader(response, name, value);
  }
}

/** A token as `GET tokens` lists it. */
function sessionView(token: KnoxToken, current: KnoxToken): KnoxSessionView {
  return {
    id: token.id,
    name: token.name,
    userAgent: token.userAgent,
    ip: token.ip,
    created: token.created,
    lastUsedAt: token.lastUsedAt,
    lastUsedIp: token.lastUsedIp,
    expiry: token.expiry,
    abilities: token.abilities,
    current: token.id === current.id,
  };
}

/** The controller class mounted at `path`. */
export function createKnoxController(path: string): Type<KnoxController> {
  @Controller(path)
  class KnoxRoutesController extends KnoxController {}
  return KnoxRoutesController;
}

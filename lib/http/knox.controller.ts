import {
  Controller,
  Delete,
  Get,
  Header,
  HttpCode,
  Injectable,
  Inject,
  Logger,
  Param,
  Patch,
  Post,
  Req,
  Res,
  UnauthorizedException,
  UseGuards,
  type Type,
} from '@nestjs/common';
import { KnoxMessages } from '../knox.messages.js';
import { HttpAdapterHost } from '@nestjs/core';
import { KNOX_RESOLVED_OPTIONS } from '../knox.constants.js';
import { KnoxClock } from '../knox-clock.js';
import { KnoxTokenStore } from '../store/knox-token.store.js';
import { personalTokenCap } from '../sessions/knox-session-rules.js';
import { KnoxPublic } from '../decorators/knox-public.decorator.js';
import { KnoxGuard } from '../guard/knox.guard.js';
import { KnoxTokenService } from '../knox-token.service.js';
import { KnoxLoginThrottler } from './knox-login-throttler.js';
import type { KnoxToken } from '../store/knox-token.entity.js';
import type { KnoxLoginResponse } from '../options/knox-module-options.interface.js';
import type { ResolvedKnoxOptions } from '../options/knox-options.js';
import { clientInfoOf, type KnoxRequest } from '../knox-request.js';
import { methodNotAllowed, methodsOf } from './knox-method-not-allowed.js';
import {
  knoxClearedCookie,
  knoxCookieCredential,
  knoxTokenCookie,
} from '../guard/knox-cookie.js';
import { readPersonalTokenBody, readRename } from './knox-token-body.js';
import {
  formatKnoxExpiry,
  knoxLogin,
  type KnoxHttpParts,
} from './knox-login.js';
import {
  checkMayCreate,
  type KnoxAuthenticatedRequest,
} from './knox-personal-tokens.js';
import {
  sessionView,
  type KnoxPersonalTokenResponse,
  type KnoxSessionView,
} from './knox-session-view.js';

export type { KnoxPersonalTokenResponse, KnoxSessionView };

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

  /** What the login and personal-token flows use of this controller. */
  private parts(): KnoxHttpParts {
    return {
      tokens: this.tokens,
      options: this.options,
      throttler: this.throttler,
      logger: this.logger,
      store: this.store,
      setHeader: (response, name, value) =>
        this.setHeader(response, name, value),
      setTokenCookie: (response, token, record) =>
        this.setTokenCookie(response, token, record),
    };
  }

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
    return knoxLogin(this.parts(), request, response);
  }

  /** `POST logout`: revokes the token that authenticated this request. */
  @Post('logout')
  @UseGuards(KnoxGuard)
  @HttpCode(204)
  async logout(
    @Req() request: KnoxAuthenticatedRequest,
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
    @Req() request: KnoxAuthenticatedRequest,
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
    @Req() request: KnoxAuthenticatedRequest,
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
    @Req() request: KnoxAuthenticatedRequest,
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
    @Req() request: KnoxAuthenticatedRequest,
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
      const byPassword = await checkMayCreate(
        this.parts(),
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
        expiry: formatKnoxExpiry(this.options, issued.record.expiry),
        abilities: asked.abilities,
        name: asked.name,
      };
    });
  }

  /** `PATCH tokens/:id` `{ name }`: renames one of the user's tokens (`null` clears the name). */
  @Patch('tokens/:id')
  @UseGuards(KnoxGuard)
  async renameToken(
    @Req() request: KnoxAuthenticatedRequest,
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
    @Req() request: KnoxAuthenticatedRequest,
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
    @Req() request: KnoxAuthenticatedRequest,
    @Res({ passthrough: true }) response: unknown,
  ): Promise<{ expiry: string | number | null }> {
    const expiry = await this.asSessionHolder(request, response, () =>
      this.tokens.refresh(request.auth, clientInfoOf(request)),
    );
    this.renewTokenCookie(request, response, expiry);
    return { expiry: formatKnoxExpiry(this.options, expiry) };
  }

  /** `POST rotate`: a new token replaces this one. */
  @Post('rotate')
  @UseGuards(KnoxGuard)
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  @Header('Pragma', 'no-cache')
  async rotate(
    @Req() request: KnoxAuthenticatedRequest,
    @Res({ passthrough: true }) response: unknown,
  ): Promise<KnoxLoginResponse> {
    const issued = await this.asSessionHolder(request, response, () =>
      this.tokens.rotate(request.auth, clientInfoOf(request)),
    );
    // A session held in the cookie gets its new token in the cookie, out of the page's reach.
    const inCookie =
      knoxCookieCredential(this.options.cookie, request) !== null;
    if (inCookie) {
      this.setTokenCookie(response, issued.token, issued.record);
    }
    return {
      expiry: formatKnoxExpiry(this.options, issued.record.expiry),
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
    request: KnoxAuthenticatedRequest,
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
    request: KnoxAuthenticatedRequest,
    response: unknown,
  ): void {
    if (
      this.options.cookie &&
      knoxCookieCredential(this.options.cookie, request) !== null
    ) {
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
    request: KnoxAuthenticatedRequest,
    response: unknown,
    expiry: Date | null,
  ): void {
    const token = knoxCookieCredential(this.options.cookie, request);
    if (token !== null && !this.options.autoRefresh) {
      this.setHeader(
        response,
        'Set-Cookie',
        knoxTokenCookie(this.options.cookie!, token, expiry),
      );
    }
  }

  private setHeader(response: unknown, name: string, value: string): void {
    this.adapterHost.httpAdapter.setHeader(response, name, value);
  }
}

/** The controller class mounted at `path`. */
export function createKnoxController(path: string): Type<KnoxController> {
  @Controller(path)
  class KnoxRoutesController extends KnoxController {}
  return KnoxRoutesController;
}

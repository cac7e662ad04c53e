import {
  Controller,
  Delete,
  Get,
  Header,
  HttpCode,
  HttpException,
  Injectable,
  Inject,
  Logger,
  MethodNotAllowedException,
  Param,
  Patch,
  Post,
  Put,
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
import { KnoxPublic } from '../decorators/knox-public.decorator.js';
import { KnoxGuard } from '../auth/knox.guard.js';
import { KnoxTokenService } from '../knox-token.service.js';
import { KnoxLoginThrottler } from './knox-login-throttler.js';
import type { KnoxToken } from '../store/knox-token.entity.js';
import type {
  KnoxLoginContext,
  KnoxLoginResponse,
  KnoxRequest,
} from '../options/knox-module-options.interface.js';
import type { ResolvedKnoxOptions } from '../options/knox-options.js';
import { clientInfoOf } from './knox-request.util.js';
import {
  checkKnoxCsrf,
  knoxClearedCookie,
  knoxTokenCookie,
} from '../transports/cookie/knox-cookie.js';
import {
  readCredentials,
  readLoginBody,
  readTokenName,
  type KnoxCredentials,
} from './knox-login-body.js';

/** The routes that answer POST only. */
const POST_ROUTES = [
  'login',
  'logout',
  'logoutall',
  'logoutothers',
  'refresh',
  'rotate',
];

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
  /** When the token stops working; `null` never. */
  expiry: Date | null;
  /** Whether this is the token making the request. */
  current: boolean;
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
    if (this.options.cookie) {
      // Login CSRF: another site must not log the browser into an account of its choosing.
      checkKnoxCsrf(request, this.options.cookie);
    }
    const body = readLoginBody(request.body);
    const credentials = await this.challenge(response, () =>
      readCredentials(request.headers.authorization, body),
    );
    const name = readTokenName(body, this.options.tokenNameMaxLength);
    const client = clientInfoOf(request);
    await this.throttler.hit(credentials.username, client.ip, response);
    const user = await this.challenge(response, () =>
      this.validate(credentials, request),
    );
    const context: KnoxLoginContext = { user, request, body };
    const issued = await this.challenge(response, async () =>
      this.tokens.create(user, {
        ...(await this.perLoginOptions(context)),
        name,
        ...client,
      }),
    );
    try {
      const answer = await this.loginResponse(
        issued.token,
        issued.record,
        context,
      );
      this.setTokenCookie(response, issued.token, issued.record);
      return answer;
    } catch (error) {
      // The client never receives this token: revoke it rather than leave a live token that
      // nobody holds (and that counts toward the user's limit).
      await this.tokens.revoke(issued.record, 'app', client).catch(() => false);
      throw error;
    }
  }

  /** `POST logout`: revokes the token that authenticated this request. */
  @Post('logout')
  @UseGuards(KnoxGuard)
  @HttpCode(204)
  async logout(
    @Req() request: AuthenticatedRequest,
    @Res({ passthrough: true }) response: unknown,
  ): Promise<void> {
    await this.tokens.revoke(request.auth, 'logout', clientInfoOf(request));
    if (this.options.cookie) {
      this.setHeader(
        response,
        'Set-Cookie',
        knoxClearedCookie(this.options.cookie),
      );
    }
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
    return tokens.map((token) => ({
      id: token.id,
      name: token.name,
      userAgent: token.userAgent,
      ip: token.ip,
      created: token.created,
      lastUsedAt: token.lastUsedAt,
      expiry: token.expiry,
      current: token.id === request.auth.id,
    }));
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
    return {
      expiry: this.formatExpiry(issued.record.expiry),
      token: issued.token,
    };
  }

  /** Other methods on these routes: 405 with `Allow`, after authentication (as knox answers). */
  @Get([...POST_ROUTES, 'tokens/:id'])
  @UseGuards(KnoxGuard)
  methodNotAllowedGet(
    @Req() request: KnoxRequest,
    @Res({ passthrough: true }) response: unknown,
  ): never {
    return this.methodNotAllowed(request, response);
  }

  /** 405 with `Allow`, after authentication. */
  @Put([...POST_ROUTES, 'tokens', 'tokens/:id'])
  @UseGuards(KnoxGuard)
  methodNotAllowedPut(
    @Req() request: KnoxRequest,
    @Res({ passthrough: true }) response: unknown,
  ): never {
    return this.methodNotAllowed(request, response);
  }

  /** 405 with `Allow`, after authentication. */
  @Patch([...POST_ROUTES, 'tokens', 'tokens/:id'])
  @UseGuards(KnoxGuard)
  methodNotAllowedPatch(
    @Req() request: KnoxRequest,
    @Res({ passthrough: true }) response: unknown,
  ): never {
    return this.methodNotAllowed(request, response);
  }

  /** 405 with `Allow`, after authentication. */
  @Delete([...POST_ROUTES, 'tokens'])
  @UseGuards(KnoxGuard)
  methodNotAllowedDelete(
    @Req() request: KnoxRequest,
    @Res({ passthrough: true }) response: unknown,
  ): never {
    return this.methodNotAllowed(request, response);
  }

  /** 405 with `Allow`, after authentication. */
  @Post(['tokens', 'tokens/:id'])
  @UseGuards(KnoxGuard)
  methodNotAllowedPost(
    @Req() request: KnoxRequest,
    @Res({ passthrough: true }) response: unknown,
  ): never {
    return this.methodNotAllowed(request, response);
  }

  private methodNotAllowed(request: KnoxRequest, response: unknown): never {
    const adapter = this.adapterHost.httpAdapter;
    const method = String(adapter.getRequestMethod(request) ?? '');
    const url = String(adapter.getRequestUrl(request) ?? '').split('?')[0];
    const allow = /\/tokens\/?$/.test(url)
      ? 'GET'
      : /\/tokens\/[^/]+\/?$/.test(url)
        ? 'DELETE'
        : 'POST';
    this.setHeader(response, 'Allow', allow);
    throw new MethodNotAllowedException(`Method "${method}" not allowed.`);
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

  private formatExpiry(expiry: Date | null): string | number | null {
    return expiry ? this.options.formatExpiry(expiry) : null;
  }

  /** What the app's per-login hooks decide (`undefined`: the module's options). */
  private async perLoginOptions(context: KnoxLoginContext) {
    const raw = this.options.raw;
    return {
      ttl: await raw.getTokenTtl?.(context),
      prefix: await raw.getTokenPrefix?.(context),
      limit: await raw.getTokenLimitPerUser?.(context),
    };
  }

  /** The login answer, through `serializeUser` and `getLoginResponse` when the app set them. */
  private async loginResponse(
    token: string,
    record: KnoxToken,
    context: KnoxLoginContext,
  ): Promise<unknown> {
    const raw = this.options.raw;
    // With the cookie transport the token goes in Set-Cookie only, out of the page's reach.
    const data: KnoxLoginResponse = {
      expiry: this.formatExpiry(record.expiry),
      ...(this.options.cookie ? {} : { token }),
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
      this.logger.error(
        `validateUser failed: ${(error as Error)?.message ?? String(error)}`,
      );
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

/** The controller class mounted at `path`. */
export function createKnoxController(path: string): Type<KnoxController> {
  @Controller(path)
  class KnoxRoutesController extends KnoxController {}
  return KnoxRoutesController;
}

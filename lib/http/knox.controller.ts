import {
  BadRequestException,
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
import { KNOX_RESOLVED_OPTIONS } from '../knox.constants.js';
import { KnoxPublic } from '../decorators/knox-public.decorator.js';
import { KnoxGuard } from '../auth/knox.guard.js';
import {
  KnoxTokenService,
  type KnoxIssuedToken,
} from '../knox-token.service.js';
import { KnoxLoginThrottler } from './knox-login-throttler.js';
import type { KnoxToken } from '../store/knox-token.entity.js';
import type {
  KnoxLoginContext,
  KnoxLoginResponse,
  KnoxRequest,
} from '../options/knox-module-options.interface.js';
import type { ResolvedKnoxOptions } from '../options/knox-options.js';
import { clientInfoOf, setResponseHeader } from './knox-request.util.js';

/** The routes that answer POST only. */
const POST_ROUTES = [
  'login',
  'logout',
  'logoutall',
  'logoutothers',
  'refresh',
  'rotate',
];

/** Longest username and password the login endpoint reads. */
const MAX_USERNAME = 150;
const MAX_PASSWORD = 1024;
const BASIC_REALM = 'Basic realm="api"';
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
/**
 * Refused in token names, which are shown in session lists: control characters, lone
 * surrogates, line separators and bidirectional overrides.
 */
const UNPRINTABLE_NAME =
  /[\p{Cc}\p{Cs}\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;
/**
 * Refused in usernames before `validateUser` sees them (no real username has them, and a NUL
 * makes PostgreSQL fail the lookup): control characters and lone surrogates. Passwords may hold
 * anything but NUL.
 */
const UNUSABLE_USERNAME = /[\p{Cc}\p{Cs}]/u;
const UNUSABLE_PASSWORD = /\u0000/;

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

interface Credentials {
  username: string;
  password: string;
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
    const body = this.readBody(request.body);
    const credentials = this.readCredentials(request, body, response);
    const name = this.readName(body);
    const client = clientInfoOf(request);
    await this.throttler.hit(credentials.username, client.ip, response);
    const user = await this.validate(credentials, request);
    if (!user) {
      setResponseHeader(response, 'WWW-Authenticate', BASIC_REALM);
      throw new UnauthorizedException('Invalid username/password.');
    }
    if (!this.options.isUserActive(user)) {
      setResponseHeader(response, 'WWW-Authenticate', BASIC_REALM);
      throw new UnauthorizedException(KnoxMessages.USER_INACTIVE);
    }
    const context: KnoxLoginContext = { user, request, body };
    const raw = this.options.raw;
    const options = {
      ttl: await raw.getTokenTtl?.(context),
      prefix: await raw.getTokenPrefix?.(context),
      limit: await raw.getTokenLimitPerUser?.(context),
      name,
      ...client,
    };
    let issued: KnoxIssuedToken;
    try {
      issued = await this.tokens.create(user, options);
    } catch (error) {
      if (error instanceof UnauthorizedException) {
        setResponseHeader(response, 'WWW-Authenticate', BASIC_REALM);
      }
      throw error;
    }
    try {
      const data: KnoxLoginResponse = {
        expiry: this.formatExpiry(issued.record.expiry),
        token: issued.token,
      };
      if (raw.serializeUser) {
        data.user = raw.serializeUser(user);
      }
      return raw.getLoginResponse
        ? await raw.getLoginResponse(data, context)
        : data;
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
  async logout(@Req() request: AuthenticatedRequest): Promise<void> {
    await this.tokens.revoke(request.auth, 'logout', clientInfoOf(request));
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
    const method = typeof request.method === 'string' ? request.method : '';
    const url =
      typeof request.url === 'string' ? request.url.split('?')[0] : '';
    const allow = /\/tokens\/?$/.test(url)
      ? 'GET'
      : /\/tokens\/[^/]+\/?$/.test(url)
        ? 'DELETE'
        : 'POST';
    setResponseHeader(response, 'Allow', allow);
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
        setResponseHeader(
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

  private readBody(body: unknown): Record<string, unknown> {
    // No body is `undefined` on both platforms; a JSON `null` (Fastify passes it through,
    // Express's strict parser refuses it) is a body that is not an object.
    if (body === undefined || body === '') {
      return {};
    }
    if (
      body === null ||
      typeof body !== 'object' ||
      Array.isArray(body) ||
      Buffer.isBuffer(body)
    ) {
      throw new BadRequestException('The request body must be a JSON object.');
    }
    return body as Record<string, unknown>;
  }

  private readCredentials(
    request: KnoxRequest,
    body: Record<string, unknown>,
    response: unknown,
  ): Credentials {
    const header = request.headers.authorization;
    if (typeof header === 'string' && /^basic(?:[ \t]|$)/i.test(header)) {
      return this.readBasic(header, response);
    }
    if (body.username === undefined && body.password === undefined) {
      setResponseHeader(response, 'WWW-Authenticate', BASIC_REALM);
      throw new UnauthorizedException(KnoxMessages.NOT_PROVIDED);
    }
    return {
      username: this.readString(
        body,
        'username',
        MAX_USERNAME,
        UNUSABLE_USERNAME,
        'control characters or invalid Unicode',
      ),
      password: this.readString(
        body,
        'password',
        MAX_PASSWORD,
        UNUSABLE_PASSWORD,
        'NUL characters',
      ),
    };
  }

  private readBasic(header: string, response: unknown): Credentials {
    const fail = (message: string): never => {
      setResponseHeader(response, 'WWW-Authenticate', BASIC_REALM);
      throw new UnauthorizedException(message);
    };
    const parts = header.split(/[ \t]+/).filter((part) => part.length > 0);
    if (parts.length === 1) {
      return fail('Invalid basic header. No credentials provided.');
    }
    if (parts.length > 2) {
      return fail(
        'Invalid basic header. Credentials string should not contain spaces.',
      );
    }
    const encoded = parts[1];
    if (encoded.length % 4 !== 0 || !BASE64.test(encoded)) {
      return fail(
        'Invalid basic header. Credentials not correctly base64 encoded.',
      );
    }
    const decoded = Buffer.from(encoded, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0 || decoded.includes('\uFFFD')) {
      return fail(
        'Invalid basic header. Credentials not correctly base64 encoded.',
      );
    }
    const username = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    if (
      username.length === 0 ||
      username.length > MAX_USERNAME ||
      password.length > MAX_PASSWORD ||
      UNUSABLE_USERNAME.test(username) ||
      UNUSABLE_PASSWORD.test(password)
    ) {
      return fail('Invalid username/password.');
    }
    return { username, password };
  }

  private readString(
    body: Record<string, unknown>,
    field: string,
    max: number,
    unusable: RegExp,
    unusableDescription: string,
  ): string {
    const value = body[field];
    if (typeof value !== 'string') {
      throw new BadRequestException(
        value === undefined
          ? `\`${field}\` is required.`
          : `\`${field}\` must be a string.`,
      );
    }
    if (value.length === 0 || value.length > max) {
      throw new BadRequestException(
        `\`${field}\` must be between 1 and ${max} characters long.`,
      );
    }
    if (unusable.test(value)) {
      throw new BadRequestException(
        `\`${field}\` must not contain ${unusableDescription}.`,
      );
    }
    return value;
  }

  private readName(body: Record<string, unknown>): string | null {
    const name = body.name;
    if (name === undefined || name === null) {
      return null;
    }
    const max = this.options.tokenNameMaxLength;
    if (
      typeof name !== 'string' ||
      name.trim().length === 0 ||
      name.length > max ||
      UNPRINTABLE_NAME.test(name)
    ) {
      throw new BadRequestException(
        `\`name\` must be a string of 1 to ${max} printable characters.`,
      );
    }
    return name.trim();
  }

  private async validate(
    credentials: Credentials,
    request: KnoxRequest,
  ): Promise<unknown> {
    try {
      return await this.options.validateUser(
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
  }
}

/** The controller class mounted at `path`. */
export function createKnoxController(path: string): Type<KnoxController> {
  @Controller(path)
  class KnoxRoutesController extends KnoxController {}
  return KnoxRoutesController;
}

import {
  Inject,
  Injectable,
  Optional,
  UnauthorizedException,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { ApplicationConfig, Reflector } from '@nestjs/core';
import type { KnoxToken } from '../../store/knox-token.entity.js';
import { PassportStrategy } from '@nestjs/passport';
import passport from 'passport';
import { KnoxGuard } from '../../guard/knox.guard.js';
import { KNOX_RESOLVED_OPTIONS } from '../../knox.constants.js';
import { KnoxMessages } from '../../knox.messages.js';
import { KnoxTokenService } from '../../knox-token.service.js';
import type { KnoxRequest } from '../../knox-request.js';
import type { ResolvedKnoxOptions } from '../../options/knox-options.js';
import { clientInfoOf } from '../../knox-request.js';

type Verify = (
  request: KnoxRequest,
  done: (error: unknown, user?: unknown, info?: unknown) => void,
) => void;

/** What passport adds to a strategy while it authenticates a request. */
interface PassportActions {
  success(user: unknown, info?: unknown): void;
  fail(challenge?: unknown, status?: number): void;
  error(error: unknown): void;
}

/**
 * The passport strategy under {@link KnoxStrategy}: hands the request to the verify callback
 * (`KnoxStrategy.validate`, through `PassportStrategy`). A request knox does not accept *fails*
 * (so `AuthGuard(['jwt', 'knox'])` goes on to the next strategy); a database outage is an
 * *error* (503), which stops the chain.
 */
class KnoxPassportBase extends passport.Strategy {
  constructor(private readonly verify: Verify) {
    super();
    this.name = 'knox';
  }

  override authenticate(request: object): void {
    const actions = this as unknown as PassportActions;
    this.verify(request as KnoxRequest, (error, user, info) => {
      if (error) {
        actions.error(error);
      } else if (!user) {
        actions.fail(info, 401);
      } else {
        actions.success(user, info);
      }
    });
  }
}

/** Reads the token and checks abilities exactly as KnoxGuard does. */
class KnoxTokenReader extends KnoxGuard {
  read(request: KnoxRequest): string | null {
    return this.extractToken(request);
  }

  /** KnoxGuard's `@KnoxAbilities` / `@KnoxAnyAbility` check: 403 + `insufficient_scope`. */
  requireAbilities(context: ExecutionContext, token: KnoxToken): void {
    this.checkAbilities(context, token);
  }
}

/** Where {@link KnoxContextRecorder} leaves the route's execution context on the request. */
const ROUTE_CONTEXT = Symbol('knox.routeContext');

type RecordedRequest = KnoxRequest & { [ROUTE_CONTEXT]?: ExecutionContext };

/**
 * A global guard that admits everything and leaves the HTTP execution context on the request.
 * Passport hands a strategy only the request, and global guards run before a route's
 * `AuthGuard`: so the strategy can read the route's ability metadata.
 */
class KnoxContextRecorder implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    if (context.getType() === 'http') {
      const request = context.switchToHttp().getRequest<RecordedRequest>();
      request[ROUTE_CONTEXT] = context;
    }
    return true;
  }
}

/** The applications that already have a {@link KnoxContextRecorder}. */
const recording = new WeakSet<ApplicationConfig>();

/**
 * A passport strategy named `knox` (through `@nestjs/passport`'s `PassportStrategy`) that
 * authenticates with the same service, tokens and checks as {@link KnoxGuard}, so knox can stand
 * beside other strategies: `AuthGuard(['jwt', 'knox'])`. Add it to a module's `providers`. It
 * sets `request.user` (passport) and `request.auth` (the token record, for `@KnoxAuth()`).
 *
 * A missing, malformed, unknown, expired or revoked token *fails* with the knox message as the
 * passport challenge (`info` in `AuthGuard.handleRequest`), so the next strategy is tried; when
 * all fail, `AuthGuard` answers its plain 401. A database outage is a 503. The route's
 * `@KnoxAbilities` / `@KnoxAnyAbility` apply as with KnoxGuard: a knox token that lacks one is
 * a 403 with `WWW-Authenticate: Token error="insufficient_scope"` (the strategy adds a global
 * guard that only records each request's route for this).
 *
 * @example
 * @Module({ providers: [KnoxStrategy, JwtStrategy] })
 * export class AuthModule {}
 *
 * @UseGuards(AuthGuard(['jwt', 'knox']))
 * @Get('me')
 * me(@Req() request: { user: unknown }) { return request.user; }
 */
@Injectable()
export class KnoxStrategy extends PassportStrategy(KnoxPassportBase, 'knox') {
  private readonly reader: KnoxTokenReader;

  constructor(
    protected readonly tokens: KnoxTokenService,
    reflector: Reflector,
    @Inject(KNOX_RESOLVED_OPTIONS) options: ResolvedKnoxOptions,
    @Optional() config?: ApplicationConfig,
  ) {
    super();
    this.reader = new KnoxTokenReader(tokens, reflector, options);
    if (config && !recording.has(config)) {
      recording.add(config);
      config.addGlobalGuard(new KnoxContextRecorder());
    }
  }

  /**
   * The user of the request's token, or `[false, message]` (a passport failure with the knox
   * message) when there is no acceptable token.
   */
  async validate(request: KnoxRequest): Promise<unknown> {
    try {
      const token = this.reader.read(request);
      if (token === null) {
        return [false, KnoxMessages.NOT_PROVIDED];
      }
      const result = await this.tokens.authenticate(
        token,
        clientInfoOf(request),
      );
      request.auth = result.token;
      const context = (request as RecordedRequest)[ROUTE_CONTEXT];
      if (context) {
        this.reader.requireAbilities(context, result.token);
      }
      return result.user;
    } catch (error) {
      if (error instanceof UnauthorizedException) {
        return [false, error.message];
      }
      throw error;
    }
  }
}

import {
  Inject,
  Module,
  RequestMethod,
  type ConfigurableModuleAsyncOptions,
  type DynamicModule,
  type MiddlewareConsumer,
  type NestModule,
} from '@nestjs/common';
import { KnoxClock, SystemKnoxClock } from './knox-clock.js';
import { KNOX_MODULE_EXTRAS, KNOX_RESOLVED_OPTIONS } from './knox.constants.js';
import {
  KnoxMethodNotAllowedMiddleware,
  knoxRoutePath,
  knoxRoutePaths,
} from './http/knox-method-not-allowed.js';
import { KnoxGuard } from './guard/knox.guard.js';
import { KnoxCache } from './cache/knox-cache.js';
import { KnoxLoginThrottler } from './http/knox-login-throttler.js';
import {
  KNOX_BODYLESS_ROUTES,
  KnoxEmptyBodyMiddleware,
} from './http/knox-empty-body.js';
import {
  KNOX_ASYNC_OPTIONS_TYPE,
  KNOX_MODULE_OPTIONS,
  KNOX_OPTIONS_TYPE,
  KnoxConfigurableModuleClass,
} from './knox.module-definition.js';
import type {
  KnoxModuleExtras,
  KnoxModuleOptions,
} from './options/knox-module-options.interface.js';
import {
  resolveKnoxOptions,
  type ResolvedKnoxOptions,
} from './options/knox-options.js';
import { KnoxTokenService } from './knox-token.service.js';
import { KnoxAuthenticator } from './auth/knox-authenticator.js';
import { KnoxEventSink } from './events/knox-event-sink.js';
import { KnoxSessions } from './sessions/knox-sessions.js';
import { KnoxTokenStore } from './store/knox-token.store.js';
import { KnoxSchemaCheck } from './store/knox-schema-check.js';
import { KnoxTokenSearch } from './store/knox-token-search.js';
import { KnoxAdminTokens } from './admin-tokens/knox-admin-tokens.js';

/**
 * Token authentication: django-rest-knox for NestJS. Registers {@link KnoxGuard},
 * {@link KnoxTokenService}, the token entity and the controller (`login`, `logout`, `logoutall` and
 * the per-device session routes).
 * Global by default.
 *
 * @example
 * KnoxModule.forRoot({
 *   userEntity: User,
 *   validateUser: (username, password) => users.check(username, password),
 * })
 *
 * @example
 * KnoxModule.forRootAsync({
 *   userEntity: User,
 *   imports: [UsersModule],
 *   inject: [UsersService, ConfigService],
 *   useFactory: (users: UsersService, config: ConfigService) => ({
 *     validateUser: (u, p) => users.check(u, p),
 *     tokenTtl: Number(config.get('TOKEN_TTL_MS')), // env values are strings
 *   }),
 * })
 */
@Module({
  providers: [
    {
      provide: KNOX_RESOLVED_OPTIONS,
      useFactory: resolveKnoxOptions,
      inject: [KNOX_MODULE_OPTIONS],
    },
    {
      provide: KnoxClock,
      useFactory: (options: ResolvedKnoxOptions) =>
        options.raw.clock ?? new SystemKnoxClock(),
      inject: [KNOX_RESOLVED_OPTIONS],
    },
    KnoxTokenStore,
    KnoxEventSink,
    KnoxAuthenticator,
    KnoxSessions,
    KnoxTokenSearch,
    KnoxAdminTokens,
    KnoxTokenService,
    KnoxGuard,
    KnoxLoginThrottler,
    KnoxCache,
    // Fails the boot when the token table lacks columns (docs/database.md).
    KnoxSchemaCheck,
  ],
  // KnoxLoginThrottler too, so that an app with `controller: false` can mount the exported
  // KnoxController at a path of its own.
  exports: [
    KnoxTokenService,
    KnoxGuard,
    KnoxClock,
    KNOX_RESOLVED_OPTIONS,
    KnoxLoginThrottler,
    // For nestjs-knox/websocket, which closes revoked connections (not exported by index.ts).
    KnoxCache,
    // For a KnoxController the app mounts itself (`controller: false`): it counts a
    // validateUser failure that is a database outage in the store's outage log.
    KnoxTokenStore,
  ],
})
export class KnoxModule
  extends KnoxConfigurableModuleClass
  implements NestModule
{
  constructor(
    @Inject(KNOX_MODULE_EXTRAS) private readonly extras: KnoxModuleExtras,
  ) {
    super();
  }

  /**
   * On the module's routes: wrong methods answer 405 with `Allow`, after authentication; the
   * routes without a body take an empty one whatever its declared type.
   */
  configure(consumer: MiddlewareConsumer): void {
    if (this.extras.controller === false) {
      return;
    }
    const base = this.extras.path ?? 'auth';
    consumer.apply(KnoxMethodNotAllowedMiddleware).forRoutes(
      ...knoxRoutePaths(base).map((path) => ({
        path,
        method: RequestMethod.ALL,
      })),
    );
    consumer.apply(KnoxEmptyBodyMiddleware).forRoutes(
      ...KNOX_BODYLESS_ROUTES.map(({ route, method }) => ({
        path: knoxRoutePath(base, route),
        method,
      })),
    );
  }

  /**
   * Registers the module with options known now. The user type of every hook is inferred from
   * `userEntity`, so `getTokenLimitPerUser: ({ user }) => user.isStaff ? 10 : 3` fails to compile
   * for a `User` without `isStaff`.
   */
  static override forRoot<User extends object>(
    options: KnoxModuleOptions<User> & Partial<KnoxModuleExtras<User>>,
  ): DynamicModule {
    return super.forRoot(options as typeof KNOX_OPTIONS_TYPE);
  }

  /**
   * Registers the module with options from a factory, class or existing provider (e.g. from
   * `@nestjs/config`). Module settings (`userEntity`, `path`, …) go beside `useFactory`; options
   * come from the factory. The user type is inferred from `userEntity`.
   */
  static override forRootAsync<User extends object>(
    options: KnoxModuleAsyncOptions<User>,
  ): DynamicModule {
    return super.forRootAsync(options as typeof KNOX_ASYNC_OPTIONS_TYPE);
  }
}

/** What {@link KnoxModule.forRootAsync} takes: module settings beside the async options. */
export type KnoxModuleAsyncOptions<User = any> = ConfigurableModuleAsyncOptions<
  KnoxModuleOptions<User>,
  'create'
> &
  Partial<KnoxModuleExtras<User>>;

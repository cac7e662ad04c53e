export { KnoxModule } from './knox.module.js';
export {
  KNOX_MODULE_OPTIONS,
  KNOX_OPTIONS_TYPE,
  KNOX_ASYNC_OPTIONS_TYPE,
} from './knox.module-definition.js';
export { KnoxMessages } from './knox.messages.js';
export { KnoxGuard } from './guard/knox.guard.js';
export {
  KnoxTokenService,
  type KnoxAuthResult,
  type KnoxCreateTokenOptions,
  type KnoxIssuedToken,
} from './knox-token.service.js';
export {
  KnoxController,
  type KnoxPersonalTokenResponse,
  type KnoxSessionView,
} from './http/knox.controller.js';
export {
  KnoxAbilities,
  KnoxAnyAbility,
  KNOX_ABILITIES_KEY,
} from './abilities/knox-abilities.decorator.js';
export type { KnoxAbilityRequirement } from './abilities/knox-abilities.js';
export {
  KnoxToken,
  knoxTokenEntity,
  KNOX_TOKEN_KINDS,
  type KnoxTokenEntityOptions,
  type KnoxTokenKind,
} from './store/knox-token.entity.js';
export {
  KnoxAdminController,
  KNOX_ADMIN_ABILITY,
} from './admin/knox-admin.controller.js';
export type {
  KnoxAdminTokenItem,
  KnoxAdminTokenPage,
  KnoxAdminRevokeOptions,
} from './admin-tokens/knox-admin-tokens.js';
export type { KnoxAdminTokenQuery } from './admin-tokens/knox-admin-query.js';
export type { KnoxTokenSortKey } from './store/knox-token-search.js';
export type { KnoxAdminOptions } from './options/knox-admin-options.js';
export { KNOX_ADMIN_OPENAPI_TAG } from './admin/knox-admin-openapi.js';
export type { KnoxTableSchema } from './store/knox-token-table.js';
export type { KnoxMigrationsOptions } from './store/migrations/knox-migrations.js';
export {
  knoxMigrations,
  KNOX_MIGRATION_NAMES,
} from './store/dialects/knox-dialect-migration-list.js';
export { KnoxSchemaError } from './store/knox-schema-check.js';
/**
 * Thrown at boot when the data source's TypeORM driver is not one nestjs-knox supports
 * (`postgres`, `mysql`, `mariadb`, `better-sqlite3`): its message names the driver and the
 * supported ones. Nothing is created before it: the token table is neither synchronized nor
 * queried. See docs/database.md, "Supported databases".
 */
export { KnoxUnsupportedDriverError } from './store/knox-dialect.js';
export { KnoxClock, SystemKnoxClock } from './knox-clock.js';
export { KnoxOptionsError } from './options/knox-options-error.js';
export type { ResolvedKnoxOptions } from './options/knox-options.js';
export { KnoxPublic } from './decorators/knox-public.decorator.js';
export { KnoxUser, KnoxAuth } from './decorators/knox-user.decorator.js';
export { KNOX_PUBLIC_KEY } from './knox.constants.js';
export * from './events/knox.events.js';
export type * from './options/knox-module-options.interface.js';
export type { KnoxRequest } from './knox-request.js';
export type { KnoxCookieOptions } from './options/knox-cookie-options.js';
export type { KnoxLoginThrottleOptions } from './options/knox-login-throttle-options.js';
export type { KnoxPersonalAccessTokenOptions } from './options/knox-personal-token-options.js';
export type {
  KnoxCacheOptions,
  KnoxCacheRedisBus,
  KnoxRedisClient,
  KnoxRedisSubscriber,
} from './options/knox-cache-options.js';
export {
  installKnoxCacheTriggers,
  type KnoxCacheMigrationsOptions,
  type KnoxCacheTriggerTarget,
} from './store/migrations/knox-cache-migrations.js';
export { knoxCacheMigrations } from './store/cache-log/knox-cache-log-list.js';
export { installKnoxCacheAbilitiesTrigger } from './store/migrations/knox-cache-abilities.migration.js';
export {
  verifyDjangoPassword,
  makeDjangoPassword,
  djangoPasswordNeedsRehash,
  isDjangoPasswordUsable,
  DJANGO_PBKDF2_ITERATIONS,
  DJANGO_UNUSABLE_PASSWORD_PREFIX,
  type DjangoPasswordOptions,
} from './django/django-password.js';
export { DjangoPasswordHasherUnavailableError } from './django/django-optional-peers.js';
export { DjangoUser, DjangoAbstractUser } from './django/django-user.entity.js';
export {
  djangoValidateUser,
  type DjangoValidateUserOptions,
  type DjangoUserSource,
} from './django/django-validate-user.js';
export {
  addKnoxSecurity,
  KNOX_SECURITY_SCHEMES,
  type KnoxDocumentBuilder,
  type KnoxSecuritySchemeObject,
  type KnoxOpenApiSecurityOptions,
} from './http/openapi/add-knox-security.js';

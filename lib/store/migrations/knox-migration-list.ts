import type { Type } from '@nestjs/common';
import type { MigrationInterface } from 'typeorm';
import { KNOX_DEFAULT_TABLE_NAME } from '../knox-token-table.js';
import {
  KNOX_MIGRATION_NAMES as SHIPPED_NAMES,
  knoxMigrations as shippedMigrations,
  type KnoxMigrationsOptions,
} from './knox-migrations.js';
import {
  KNOX_EXPIRY_CAP_MIGRATION_NAME,
  tokenExpiryCapMigration,
} from './knox-token-expiry-cap.migration.js';

/**
 * The names TypeORM records for the shipped migrations (its `migrations` table). Fixed forever:
 * a later schema change ships as a further migration, never as an edit of one of these.
 */
export const KNOX_MIGRATION_NAMES = {
  ...SHIPPED_NAMES,
  /**
   * Adds `max_expiry` (`timestamptz`, `NULL` = no cap), in both layouts: the latest expiry a
   * token may reach through refresh and rotation (personal access tokens' `maxTtl`).
   */
  tokenExpiryCap: KNOX_EXPIRY_CAP_MIGRATION_NAME,
} as const;

/**
 * The migrations nestjs-knox ships, in order, for the app's DataSource `migrations` list (the
 * way `@nestjs/typeorm` apps run migrations: `typeorm migration:run -d data-source.ts`, or
 * `migrationsRun: true`). The user table's name and key type are read, when the migration runs,
 * from the DataSource's metadata of `userEntity` (so it must be in the DataSource's `entities`).
 * Later versions append migrations to this list; the ones already run are recorded by name
 * ({@link KNOX_MIGRATION_NAMES}) and skipped.
 *
 * - `schema: 'knox'` (default): `KnoxCreateTokenTable9000000000001` creates the table.
 * - `schema: 'django'`: `KnoxDjangoTakeover9000000000002` completes django-rest-knox's table.
 * - then, in both: `KnoxTokenAbilities9000000000004` adds the `abilities` and `last_used_ip`
 *   columns, and `KnoxTokenExpiryCap9000000000007` the `max_expiry` column.
 *
 * @example
 * // data-source.ts
 * export default new DataSource({
 *   type: 'postgres',
 *   url: process.env.DATABASE_URL,
 *   entities: [User, knoxTokenEntity(User)],
 *   migrations: [...knoxMigrations(User), 'dist/migrations/*.js'],
 * });
 */
export function knoxMigrations(
  userEntity: Type<unknown>,
  options: KnoxMigrationsOptions = {},
): Type<MigrationInterface>[] {
  return [
    ...shippedMigrations(userEntity, options),
    tokenExpiryCapMigration(options.tableName ?? KNOX_DEFAULT_TABLE_NAME),
  ];
}

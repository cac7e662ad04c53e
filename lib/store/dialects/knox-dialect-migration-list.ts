import type { Type } from '@nestjs/common';
import type { MigrationInterface } from 'typeorm';
import { KNOX_DEFAULT_TABLE_NAME } from '../knox-token-table.js';
import {
  KNOX_MIGRATION_NAMES,
  knoxMigrations as shippedMigrations,
} from '../migrations/knox-migration-list.js';
import type { KnoxMigrationsOptions } from '../migrations/knox-migrations.js';
import { knoxCacheMigrations as shippedCacheMigrations } from '../migrations/knox-cache-migration-list.js';
import type { KnoxCacheMigrationsOptions } from '../migrations/knox-cache-migrations.js';
import {
  DJANGO_TAKEOVER_STEPS,
  POSTGRES_ONLY_NO_OP,
  abilitiesColumns,
  addColumnsSteps,
  createTokenTableSteps,
  dialectAware,
  expiryCapColumns,
  kindColumns,
  type KnoxPortableSteps,
} from './knox-dialect-migrations.js';

export { KNOX_MIGRATION_NAMES };

/**
 * The migrations nestjs-knox ships, in order, for the app's DataSource `migrations` list: the
 * same classes, names and order on every supported driver, each emitting that driver's DDL
 * (PostgreSQL runs the shipped SQL unchanged). The user table's name and key type are read,
 * when the migration runs, from the DataSource's metadata of `userEntity` (so it must be in the
 * DataSource's `entities`). `schema: 'django'` (the takeover) is PostgreSQL's only.
 *
 * - `schema: 'knox'` (default): `KnoxCreateTokenTable9000000000001` creates the table.
 * - `schema: 'django'`: `KnoxDjangoTakeover9000000000002` completes django-rest-knox's table.
 * - then, in both: `KnoxTokenAbilities9000000000004` adds the `abilities` and `last_used_ip`
 *   columns, `KnoxTokenKind9000000000006` the `kind` column, and
 *   `KnoxTokenExpiryCap9000000000007` the `max_expiry` column.
 *
 * @example
 * // data-source.ts
 * export default new DataSource({
 *   type: 'postgres', // or 'mariadb', 'mysql', 'better-sqlite3'
 *   url: process.env.DATABASE_URL,
 *   entities: [User, knoxTokenEntity(User)],
 *   migrations: [...knoxMigrations(User), 'dist/migrations/*.js'],
 * });
 */
export function knoxMigrations(
  userEntity: Type<unknown>,
  options: KnoxMigrationsOptions = {},
): Type<MigrationInterface>[] {
  const tableName = options.tableName ?? KNOX_DEFAULT_TABLE_NAME;
  const steps: Record<string, KnoxPortableSteps> = {
    [KNOX_MIGRATION_NAMES.createTokenTable]: createTokenTableSteps(
      userEntity,
      tableName,
    ),
    [KNOX_MIGRATION_NAMES.djangoTakeover]: DJANGO_TAKEOVER_STEPS,
    [KNOX_MIGRATION_NAMES.tokenAbilities]: addColumnsSteps(
      tableName,
      abilitiesColumns,
    ),
    [KNOX_MIGRATION_NAMES.tokenKind]: addColumnsSteps(tableName, kindColumns),
    [KNOX_MIGRATION_NAMES.tokenExpiryCap]: addColumnsSteps(
      tableName,
      expiryCapColumns,
    ),
  };
  return shippedMigrations(userEntity, options).map((shipped) =>
    dialectAware(shipped, stepsOf(steps, shipped)),
  );
}

/**
 * The cache's migrations, for the DataSource's `migrations` list after {@link knoxMigrations}':
 * `KnoxCacheTriggers9000000000003` and `KnoxCacheAbilities9000000000005` install PostgreSQL's
 * LISTEN/NOTIFY triggers there, and are recorded no-ops on MySQL/MariaDB and SQLite (which have
 * no `'postgres'` bus).
 *
 * @example
 * migrations: [...knoxMigrations(User), ...knoxCacheMigrations()],
 */
export function knoxCacheMigrations(
  options: KnoxCacheMigrationsOptions = {},
): Type<MigrationInterface>[] {
  return shippedCacheMigrations(options).map((shipped) =>
    dialectAware(shipped, POSTGRES_ONLY_NO_OP),
  );
}

function stepsOf(
  steps: Record<string, KnoxPortableSteps>,
  shipped: Type<MigrationInterface>,
): KnoxPortableSteps {
  const name = new shipped().name ?? shipped.name;
  const found = steps[name];
  if (!found) {
    throw new Error(`knoxMigrations: no portable steps for ${name}.`);
  }
  return found;
}

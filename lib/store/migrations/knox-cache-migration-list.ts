import type { Type } from '@nestjs/common';
import type { MigrationInterface } from 'typeorm';
import { KNOX_DEFAULT_TABLE_NAME } from '../knox-token-table.js';
import {
  knoxCacheMigrations as shippedCacheTriggers,
  type KnoxCacheMigrationsOptions,
} from './knox-cache-migrations.js';
import { cacheAbilitiesMigration } from './knox-cache-abilities.migration.js';

/**
 * The migrations that install the cache's invalidation triggers (see docs/cache.md), for the
 * DataSource's `migrations` list after {@link knoxMigrations}' (their names sort after theirs):
 * `KnoxCacheTriggers9000000000003` (deletions, the updates that matter, user changes) and
 * `KnoxCacheAbilities9000000000005` (a token's `abilities` changed). Needed when `cache` is on
 * with the `'postgres'` bus and the schema is not synchronized; boot fails with a message saying
 * so when a trigger is missing. Later versions append to this list; the ones already run are
 * skipped by name.
 *
 * @example
 * migrations: [...knoxMigrations(User), ...knoxCacheMigrations()],
 */
export function knoxCacheMigrations(
  options: KnoxCacheMigrationsOptions = {},
): Type<MigrationInterface>[] {
  return [
    ...shippedCacheTriggers(options),
    cacheAbilitiesMigration({
      tokenTable: options.tableName ?? KNOX_DEFAULT_TABLE_NAME,
      channel: options.channel ?? 'knox_cache',
    }),
  ];
}

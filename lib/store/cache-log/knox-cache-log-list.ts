import type { Type } from '@nestjs/common';
import type { MigrationInterface } from 'typeorm';
import { KNOX_DEFAULT_TABLE_NAME } from '../knox-token-table.js';
// The shipped trigger migrations, PostgreSQL's only: recorded no-ops on the other databases.
import { knoxCacheMigrations as shippedList } from '../dialects/knox-dialect-migration-list.js';
import type { KnoxCacheMigrationsOptions } from '../migrations/knox-cache-migrations.js';
import { cacheLogMigration } from './knox-cache-log.migration.js';

/**
 * The migrations that install the cache's invalidation triggers (see docs/cache.md), for the
 * DataSource's `migrations` list after {@link knoxMigrations}' (their names sort after theirs):
 * `KnoxCacheTriggers9000000000003` (deletions, the updates that matter, user changes, notified
 * for the `'postgres'` bus), `KnoxCacheAbilities9000000000005` (a token's `abilities` changed)
 * and `KnoxCacheLog9000000000008` (the same events appended to the `knox_cache_log` table that
 * the `'poll'` bus reads). Needed when `cache` is on with either bus and the schema is not
 * synchronized; boot fails with a message saying so when a trigger is missing. Later versions
 * append to this list; the ones already run are skipped by name.
 *
 * @example
 * migrations: [...knoxMigrations(User), ...knoxCacheMigrations()],
 */
export function knoxCacheMigrations(
  options: KnoxCacheMigrationsOptions = {},
): Type<MigrationInterface>[] {
  return [
    ...shippedList(options),
    cacheLogMigration(options.tableName ?? KNOX_DEFAULT_TABLE_NAME),
  ];
}

import type { Type } from '@nestjs/common';
import type { MigrationInterface, QueryRunner } from 'typeorm';
import { cacheLogDialectOf } from './knox-cache-log-dialect.js';
import {
  dropKnoxCacheLogPostgres,
  hasKnoxCacheLogPostgres,
  installKnoxCacheLogPostgres,
} from './knox-cache-log-postgres.js';
import {
  dropKnoxCacheLogMysql,
  hasKnoxCacheLogMysql,
  installKnoxCacheLogMysql,
} from './knox-cache-log-mysql.js';
import {
  dropKnoxCacheLogSqlite,
  hasKnoxCacheLogSqlite,
  installKnoxCacheLogSqlite,
} from './knox-cache-log-sqlite.js';

/**
 * The name TypeORM records for this migration. Fixed forever (kept beside the migration, so
 * that the shipped migration files stay as they shipped).
 */
export const KNOX_CACHE_LOG_MIGRATION = 'KnoxCacheLog9000000000008';

function dialectOf(queryRunner: QueryRunner) {
  return cacheLogDialectOf(queryRunner.connection.options.type);
}

const DDL = {
  postgres: {
    install: installKnoxCacheLogPostgres,
    drop: dropKnoxCacheLogPostgres,
    has: hasKnoxCacheLogPostgres,
  },
  mysql: {
    install: installKnoxCacheLogMysql,
    drop: dropKnoxCacheLogMysql,
    has: hasKnoxCacheLogMysql,
  },
  sqlite: {
    install: installKnoxCacheLogSqlite,
    drop: dropKnoxCacheLogSqlite,
    has: hasKnoxCacheLogSqlite,
  },
};

/** Runs `work` in the caller's transaction, or in one of its own when there is none. */
async function inTransaction(
  queryRunner: QueryRunner,
  work: () => Promise<void>,
): Promise<void> {
  const own = !queryRunner.isTransactionActive;
  if (own) {
    await queryRunner.startTransaction();
  }
  try {
    await work();
    if (own) {
      await queryRunner.commitTransaction();
    }
  } catch (error) {
    if (own) {
      await queryRunner.rollbackTransaction();
    }
    throw error;
  }
}

/**
 * Creates the cache's invalidation log (`knox_cache_log`) and the triggers that append to it
 * (what the `'poll'` bus reads; docs/cache.md), for the data source's driver. Idempotent.
 */
export async function installKnoxCacheLog(
  queryRunner: QueryRunner,
  tokenTable: string,
): Promise<void> {
  const dialect = dialectOf(queryRunner);
  const install = () => DDL[dialect].install(queryRunner, tokenTable);
  // MySQL commits around each DDL statement: a transaction would only pretend.
  await (dialect === 'mysql' ? install() : inTransaction(queryRunner, install));
}

/** Removes what {@link installKnoxCacheLog} installed (the triggers, then the log table). */
export async function dropKnoxCacheLog(
  queryRunner: QueryRunner,
  tokenTable: string,
): Promise<void> {
  await DDL[dialectOf(queryRunner)].drop(queryRunner, tokenTable);
}

/** Whether the log table and all its triggers are in place (the `'poll'` bus's boot check). */
export async function hasKnoxCacheLog(
  queryRunner: QueryRunner,
  tokenTable: string,
): Promise<boolean> {
  return DDL[dialectOf(queryRunner)].has(queryRunner, tokenTable);
}

/**
 * `KnoxCacheLog9000000000008`: the invalidation log of the `'poll'` bus and its triggers (see
 * {@link installKnoxCacheLog}); needs the token table with its `abilities` column first.
 * `down` drops the triggers and the table.
 */
export function cacheLogMigration(
  tokenTable: string,
): Type<MigrationInterface> {
  const migrationClass = class implements MigrationInterface {
    readonly name = KNOX_CACHE_LOG_MIGRATION;
    up(queryRunner: QueryRunner): Promise<void> {
      return installKnoxCacheLog(queryRunner, tokenTable);
    }
    down(queryRunner: QueryRunner): Promise<void> {
      return dropKnoxCacheLog(queryRunner, tokenTable);
    }
  };
  Object.defineProperty(migrationClass, 'name', { value: 'KnoxCacheLog' });
  return migrationClass;
}

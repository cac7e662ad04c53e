import type { MigrationInterface, QueryRunner } from 'typeorm';
import { quotePath, type KnoxTablePath } from '../knox-token-table.js';
import { tokenTablePath, type KnoxMigrationSql } from './knox-migration-sql.js';

/** The name TypeORM records for {@link tokenExpiryCapMigration}. Fixed forever. */
export const KNOX_EXPIRY_CAP_MIGRATION_NAME = 'KnoxTokenExpiryCap9000000000007';

/**
 * `KnoxTokenExpiryCap9000000000007`, for both layouts (`'knox'` and `'django'`): the
 * `max_expiry` column (`timestamptz`, `NULL` = no cap of the token's own), the latest expiry a
 * token may reach through refresh, auto refresh and rotation (issue 23: a personal access token
 * stops at `created + personalAccessTokens.maxTtl`). Adds one nullable column: no row is
 * rewritten, existing rows keep their lifetimes. `down` drops exactly that column.
 */
export function tokenExpiryCapSql(token: KnoxTablePath): KnoxMigrationSql {
  const table = quotePath(token);
  return {
    up: [
      `ALTER TABLE ${table}
  ADD COLUMN "max_expiry" timestamp with time zone`,
    ],
    down: [
      `ALTER TABLE ${table}
  DROP COLUMN "max_expiry"`,
    ],
  };
}

async function run(queryRunner: QueryRunner, statements: string[]) {
  for (const sql of statements) {
    await queryRunner.query(sql);
  }
}

/** The migration class of {@link tokenExpiryCapSql} for the token table `tableName`. */
export function tokenExpiryCapMigration(
  tableName: string,
): new () => MigrationInterface {
  const sql = (queryRunner: QueryRunner) =>
    tokenExpiryCapSql(tokenTablePath(queryRunner, tableName));
  const migrationClass = class implements MigrationInterface {
    readonly name = KNOX_EXPIRY_CAP_MIGRATION_NAME;
    up(queryRunner: QueryRunner): Promise<void> {
      return run(queryRunner, sql(queryRunner).up);
    }
    down(queryRunner: QueryRunner): Promise<void> {
      return run(queryRunner, sql(queryRunner).down);
    }
  };
  Object.defineProperty(migrationClass, 'name', {
    value: 'KnoxTokenExpiryCap',
  });
  return migrationClass;
}

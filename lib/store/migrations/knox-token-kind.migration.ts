import type { MigrationInterface, QueryRunner } from 'typeorm';
import { quotePath, type KnoxTablePath } from '../knox-token-table.js';
import { tokenTablePath, type KnoxMigrationSql } from './knox-migration-sql.js';

/**
 * The name TypeORM records for this migration. Fixed forever, like `KNOX_MIGRATION_NAMES`' (kept
 * here, beside the migration, so that the shipped migration files stay as they shipped).
 */
export const KNOX_TOKEN_KIND_MIGRATION = 'KnoxTokenKind9000000000006';

/**
 * `KnoxTokenKind9000000000006`, for both layouts (`'knox'` and `'django'`): the `kind` column,
 * `'session'` (a login, a token the app issued, their rotations) or `'personal-access-token'`
 * (`POST {path}/tokens`), so that the token admin can tell them apart. `NOT NULL DEFAULT
 * 'session'`: PostgreSQL (11+) adds it without a table rewrite, every existing row reads as a
 * session (personal access tokens issued before this migration included: nothing stored told
 * them apart), and rows django-rest-knox inserts later get the default. `down` drops the column.
 */
export function tokenKindSql(token: KnoxTablePath): KnoxMigrationSql {
  const table = quotePath(token);
  return {
    up: [
      `ALTER TABLE ${table} ADD COLUMN "kind" character varying(32) NOT NULL DEFAULT 'session'`,
    ],
    down: [`ALTER TABLE ${table} DROP COLUMN "kind"`],
  };
}

async function run(queryRunner: QueryRunner, statements: string[]) {
  for (const sql of statements) {
    await queryRunner.query(sql);
  }
}

/** The migration class of {@link tokenKindSql} for the token table `tableName`. */
export function tokenKindMigration(
  tableName: string,
): new () => MigrationInterface {
  const sql = (queryRunner: QueryRunner) =>
    tokenKindSql(tokenTablePath(queryRunner, tableName));
  const migrationClass = class implements MigrationInterface {
    readonly name = KNOX_TOKEN_KIND_MIGRATION;
    up(queryRunner: QueryRunner): Promise<void> {
      return run(queryRunner, sql(queryRunner).up);
    }
    down(queryRunner: QueryRunner): Promise<void> {
      return run(queryRunner, sql(queryRunner).down);
    }
  };
  Object.defineProperty(migrationClass, 'name', { value: 'KnoxTokenKind' });
  return migrationClass;
}

import type { Type } from '@nestjs/common';
import type { MigrationInterface, QueryRunner } from 'typeorm';
import {
  KNOX_DEFAULT_TABLE_NAME,
  quotePath,
  type KnoxTableSchema,
} from '../knox-token-table.js';
import {
  createDjangoTableSql,
  createTokenTableSql,
  djangoTakeoverSql,
  tokenTablePath,
  userTableRef,
} from './knox-migration-sql.js';
import { tokenAbilitiesSql } from './knox-token-abilities.migration.js';

/**
 * The names TypeORM records for the shipped migrations (its `migrations` table). Fixed forever:
 * a later schema change ships as a further migration, never as an edit of one of these. The
 * timestamps are far in the future on purpose: TypeORM runs migrations in timestamp order, and
 * these reference the app's user table, so they must come after the app's own migrations.
 */
export const KNOX_MIGRATION_NAMES = {
  /** Creates the token table (layout `'knox'`) with its foreign key to the user table. */
  createTokenTable: 'KnoxCreateTokenTable9000000000001',
  /**
   * Completes a table django-rest-knox created (layout `'django'`): adds nestjs-knox's columns
   * and indexes, touching nothing of Django's. Creates Django's table first when there is none.
   */
  djangoTakeover: 'KnoxDjangoTakeover9000000000002',
  /**
   * Installs the cache's invalidation triggers (`knoxCacheMigrations`, only for `cache` with the
   * `'postgres'` bus).
   */
  cacheTriggers: 'KnoxCacheTriggers9000000000003',
  /**
   * Adds the `abilities` (`text[]`, `NULL` = every ability) and `last_used_ip` columns, in both
   * layouts. Existing rows, and rows django-rest-knox inserts later, keep full access.
   */
  tokenAbilities: 'KnoxTokenAbilities9000000000004',
} as const;

/** Options of {@link knoxMigrations}: the same `tableName` / `schema` as given to `KnoxModule`. */
export interface KnoxMigrationsOptions {
  /**
   * The token table, optionally schema-qualified. An unqualified name lands in the DataSource's
   * `schema` (or the connection's search path).
   * @default 'knox_authtoken'
   */
  tableName?: string;
  /**
   * `'knox'`: a fresh install, the migrations create the table. `'django'`: take over the table
   * of a django-rest-knox deployment (see docs/moving-from-django.md).
   * @default 'knox'
   */
  schema?: KnoxTableSchema;
}

type KnoxMigrationClass = Type<MigrationInterface>;

function migration(
  name: string,
  up: (queryRunner: QueryRunner) => Promise<void>,
  down: (queryRunner: QueryRunner) => Promise<void>,
): KnoxMigrationClass {
  const migrationClass = class implements MigrationInterface {
    readonly name = name;
    up(queryRunner: QueryRunner): Promise<void> {
      return up(queryRunner);
    }
    down(queryRunner: QueryRunner): Promise<void> {
      return down(queryRunner);
    }
  };
  Object.defineProperty(migrationClass, 'name', {
    value: name.replace(/\d+$/, ''),
  });
  return migrationClass;
}

async function run(queryRunner: QueryRunner, statements: string[]) {
  for (const sql of statements) {
    await queryRunner.query(sql);
  }
}

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
 *   columns.
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
): KnoxMigrationClass[] {
  const tableName = options.tableName ?? KNOX_DEFAULT_TABLE_NAME;
  const schema = options.schema ?? 'knox';
  if (typeof userEntity !== 'function') {
    throw new TypeError(
      'knoxMigrations: pass your TypeORM user entity class, e.g. knoxMigrations(User).',
    );
  }
  if (schema !== 'knox' && schema !== 'django') {
    throw new TypeError(
      `knoxMigrations: \`schema\` must be 'knox' or 'django'; got ${String(schema)}.`,
    );
  }
  const abilities = tokenAbilitiesMigration(tableName);
  if (schema === 'django') {
    return [knoxDjangoTakeoverMigration(userEntity, tableName), abilities];
  }
  const name = KNOX_MIGRATION_NAMES.createTokenTable;
  const sql = (queryRunner: QueryRunner) =>
    createTokenTableSql(
      tokenTablePath(queryRunner, tableName),
      userTableRef(queryRunner, userEntity, name),
    );
  return [
    migration(
      name,
      (queryRunner) => run(queryRunner, sql(queryRunner).up),
      (queryRunner) => run(queryRunner, sql(queryRunner).down),
    ),
    abilities,
  ];
}

function tokenAbilitiesMigration(tableName: string): KnoxMigrationClass {
  return migration(
    KNOX_MIGRATION_NAMES.tokenAbilities,
    (queryRunner) =>
      run(
        queryRunner,
        tokenAbilitiesSql(tokenTablePath(queryRunner, tableName)).up,
      ),
    (queryRunner) =>
      run(
        queryRunner,
        tokenAbilitiesSql(tokenTablePath(queryRunner, tableName)).down,
      ),
  );
}

function knoxDjangoTakeoverMigration(
  userEntity: Type<unknown>,
  tableName: string,
): KnoxMigrationClass {
  const name = KNOX_MIGRATION_NAMES.djangoTakeover;
  return migration(
    name,
    async (queryRunner) => {
      const token = tokenTablePath(queryRunner, tableName);
      const [{ exists }] = (await queryRunner.query(
        'SELECT to_regclass($1) IS NOT NULL AS "exists"',
        [quotePath(token)],
      )) as { exists: boolean }[];
      if (!exists) {
        await run(
          queryRunner,
          createDjangoTableSql(
            token,
            userTableRef(queryRunner, userEntity, name),
          ),
        );
      }
      await run(queryRunner, djangoTakeoverSql(token).up);
    },
    // Removes only what nestjs-knox added: a table created here for Django (nestjs-knox first)
    // stays, since Django's migrations (`migrate knox --fake`) then own it.
    (queryRunner) =>
      run(
        queryRunner,
        djangoTakeoverSql(tokenTablePath(queryRunner, tableName)).down,
      ),
  );
}

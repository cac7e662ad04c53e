import type { Type } from '@nestjs/common';
import {
  Table,
  TableColumn,
  TableForeignKey,
  TableIndex,
  TableUnique,
  type MigrationInterface,
  type QueryRunner,
  type TableColumnOptions,
} from 'typeorm';
import { IP_COLUMN_LENGTH, USER_AGENT_LENGTH } from '../../knox.constants.js';
import { knoxDialectOf, type KnoxDialect } from '../knox-dialect.js';
import { knoxTableNames } from '../knox-token-table.js';
import { userTableRef } from '../migrations/knox-migration-sql.js';

/*
 * The shipped migrations' DDL on MySQL/MariaDB and SQLite. Each class of the lists keeps its
 * shipped name: on PostgreSQL it runs the shipped class, elsewhere the steps below, written with
 * TypeORM's Table API so that each driver emits its own DDL (and its schema diff finds nothing).
 */

/** What a migration does off PostgreSQL. */
export interface KnoxPortableSteps {
  up(queryRunner: QueryRunner, dialect: KnoxDialect): Promise<void>;
  down(queryRunner: QueryRunner, dialect: KnoxDialect): Promise<void>;
}

/** A class named as `shipped`, delegating to it on PostgreSQL and running `steps` elsewhere. */
export function dialectAware(
  shipped: Type<MigrationInterface>,
  steps: KnoxPortableSteps,
): Type<MigrationInterface> {
  const instance = new shipped();
  const name = instance.name ?? shipped.name;
  const migrationClass = class implements MigrationInterface {
    readonly name = name;
    up(queryRunner: QueryRunner): Promise<void> {
      const dialect = knoxDialectOf(queryRunner.connection);
      return dialect === 'postgres'
        ? new shipped().up(queryRunner)
        : steps.up(queryRunner, dialect);
    }
    down(queryRunner: QueryRunner): Promise<void> {
      const dialect = knoxDialectOf(queryRunner.connection);
      return dialect === 'postgres'
        ? new shipped().down(queryRunner)
        : steps.down(queryRunner, dialect);
    }
  };
  Object.defineProperty(migrationClass, 'name', { value: shipped.name });
  return migrationClass;
}

/** A recorded no-op off PostgreSQL (the cache's LISTEN/NOTIFY triggers). */
export const POSTGRES_ONLY_NO_OP: KnoxPortableSteps = {
  up: () => Promise.resolve(),
  down: () => Promise.resolve(),
};

/** The takeover of a django-rest-knox table: PostgreSQL's only. */
export const DJANGO_TAKEOVER_STEPS: KnoxPortableSteps = {
  up: (queryRunner) =>
    Promise.reject(
      new Error(
        `KnoxDjangoTakeover9000000000002: \`schema: 'django'\` (taking over a django-rest-knox table) is PostgreSQL's only; this data source is '${String(queryRunner.connection.options.type)}' (docs/database.md).`,
      ),
    ),
  down: () => Promise.resolve(),
};

/** A time column of `dialect`: `datetime(3)` on MySQL, `datetime` on SQLite. */
function time(
  name: string,
  dialect: KnoxDialect,
  nullable = true,
): TableColumnOptions {
  return {
    name,
    type: 'datetime',
    isNullable: nullable,
    ...(dialect === 'mysql' ? { precision: 3 } : {}),
  };
}

function varchar(name: string, length: number): TableColumnOptions {
  return { name, type: 'varchar', length: String(length), isNullable: true };
}

/** `KnoxCreateTokenTable9000000000001`: the table as that migration made it. */
export function createTokenTableSteps(
  userEntity: Type<unknown>,
  tableName: string,
): KnoxPortableSteps {
  return {
    async up(queryRunner, dialect) {
      const names = knoxTableNames(tableName, 'knox');
      const user = userTableRef(
        queryRunner,
        userEntity,
        'KnoxCreateTokenTable9000000000001',
      );
      const userPath = user.path.schema
        ? `${user.path.schema}.${user.path.table}`
        : user.path.table;
      const table = new Table({
        name: tableName,
        columns: tokenTableColumns(dialect, names.primaryKey, user.type),
        uniques: [
          new TableUnique({ name: names.idUnique, columnNames: ['id'] }),
        ],
        indices: names.indexes.map(
          (index) =>
            new TableIndex({ name: index.name, columnNames: [index.column] }),
        ),
        foreignKeys: [
          new TableForeignKey({
            name: names.foreignKey,
            columnNames: ['user_id'],
            referencedTableName: userPath,
            referencedColumnNames: [user.column],
            onDelete: 'CASCADE',
            onUpdate: 'NO ACTION',
          }),
        ],
      });
      await queryRunner.createTable(table, false, true, true);
    },
    async down(queryRunner) {
      await queryRunner.dropTable(tableName, false, true, true);
    },
  };
}

/** Steps that add columns (and drop them on the way down). */
export function addColumnsSteps(
  tableName: string,
  columns: (dialect: KnoxDialect) => TableColumnOptions[],
): KnoxPortableSteps {
  return {
    async up(queryRunner, dialect) {
      await queryRunner.addColumns(
        tableName,
        columns(dialect).map((column) => new TableColumn(column)),
      );
    },
    async down(queryRunner, dialect) {
      await queryRunner.dropColumns(
        tableName,
        columns(dialect).map((column) => column.name),
      );
    },
  };
}

/** `KnoxTokenAbilities9000000000004`: `abilities` (JSON text) and `last_used_ip`. */
export const abilitiesColumns = (): TableColumnOptions[] => [
  { name: 'abilities', type: 'text', isNullable: true },
  varchar('last_used_ip', IP_COLUMN_LENGTH),
];

/** `KnoxTokenKind9000000000006`: `kind`, `NOT NULL DEFAULT 'session'`. */
export const kindColumns = (): TableColumnOptions[] => [
  {
    name: 'kind',
    type: 'varchar',
    length: '32',
    isNullable: false,
    default: "'session'",
  },
];

/** `KnoxTokenExpiryCap9000000000007`: `max_expiry`. */
export const expiryCapColumns = (
  dialect: KnoxDialect,
): TableColumnOptions[] => [time('max_expiry', dialect)];

/** The columns `KnoxCreateTokenTable9000000000001` made. */
function tokenTableColumns(
  dialect: KnoxDialect,
  primaryKey: string,
  userIdType: string,
): TableColumnOptions[] {
  const names = { primaryKey };
  const user = { type: userIdType };
  return [
    {
      ...varchar('digest', 128),
      isNullable: false,
      isPrimary: true,
      primaryKeyConstraintName: names.primaryKey,
    },
    { ...varchar('token_key', 25), isNullable: false },
    { ...varchar('id', 36), isNullable: false },
    time('created', dialect, false),
    time('expiry', dialect),
    { name: 'ttl_ms', type: 'bigint', isNullable: true },
    varchar('name', 200),
    varchar('user_agent', USER_AGENT_LENGTH),
    varchar('ip', IP_COLUMN_LENGTH),
    time('last_used_at', dialect),
    time('retired_at', dialect),
    { name: 'user_id', type: user.type, isNullable: false },
  ];
}

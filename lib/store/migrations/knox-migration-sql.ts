import type { EntityMetadata, QueryRunner } from 'typeorm';
import type { Type } from '@nestjs/common';
import {
  knoxTableNames,
  quoteIdent,
  quotePath,
  splitTablePath,
  type KnoxTablePath,
} from '../knox-token-table.js';

/** Up and down statements of one migration step. */
export interface KnoxMigrationSql {
  up: string[];
  down: string[];
}

/** The user table as the foreign key references it. */
export interface KnoxUserTableRef {
  path: KnoxTablePath;
  column: string;
  /** SQL type of the primary key, e.g. `integer`, `uuid`, `character varying(36)`. */
  type: string;
}

/** The token table's path in this data source (its `schema` option applies to an unqualified name). */
export function tokenTablePath(
  queryRunner: QueryRunner,
  tableName: string,
): KnoxTablePath {
  const defaultSchema = (queryRunner.connection.options as { schema?: string })
    .schema;
  return splitTablePath(tableName, defaultSchema);
}

/** Reads the user table's name and key type from the data source's metadata of `userEntity`. */
export function userTableRef(
  queryRunner: QueryRunner,
  userEntity: Type<unknown>,
  migrationName: string,
): KnoxUserTableRef {
  const connection = queryRunner.connection;
  if (!connection.hasMetadata(userEntity)) {
    throw new Error(
      `${migrationName}: this DataSource has no entity ${userEntity.name}; add it to the DataSource's \`entities\` (the migration reads the user table's name and key type from it).`,
    );
  }
  const metadata: EntityMetadata = connection.getMetadata(userEntity);
  if (metadata.primaryColumns.length !== 1) {
    throw new Error(
      `${migrationName}: ${userEntity.name} must have exactly one primary column; it has ${metadata.primaryColumns.length}.`,
    );
  }
  const primary = metadata.primaryColumns[0];
  let type = connection.driver.normalizeType(primary);
  const length = primary.length || connection.driver.getColumnLength(primary);
  if (length && /char/.test(type)) {
    type += `(${length})`;
  }
  return {
    path: { schema: metadata.schema, table: metadata.tableName },
    column: primary.databaseName,
    type,
  };
}

/** Creates the token table nestjs-knox uses (layout `'knox'`). */
export function createTokenTableSql(
  token: KnoxTablePath,
  user: KnoxUserTableRef,
): KnoxMigrationSql {
  const names = knoxTableNames(token.table, 'knox');
  const table = quotePath(token);
  return {
    up: [
      `CREATE TABLE ${table} (
  "digest" character varying(128) NOT NULL,
  "token_key" character varying(25) NOT NULL,
  "id" uuid NOT NULL DEFAULT gen_random_uuid(),
  "user_id" ${user.type} NOT NULL,
  "created" timestamp with time zone NOT NULL,
  "expiry" timestamp with time zone,
  "ttl_ms" bigint,
  "name" character varying(200),
  "user_agent" character varying(512),
  "ip" character varying(45),
  "last_used_at" timestamp with time zone,
  "retired_at" timestamp with time zone,
  CONSTRAINT ${quoteIdent(names.primaryKey)} PRIMARY KEY ("digest"),
  CONSTRAINT ${quoteIdent(names.idUnique)} UNIQUE ("id"),
  CONSTRAINT ${quoteIdent(names.foreignKey)} FOREIGN KEY ("user_id") REFERENCES ${quotePath(user.path)} (${quoteIdent(user.column)}) ON DELETE CASCADE
)`,
      ...names.indexes.map(
        (index) =>
          `CREATE INDEX ${quoteIdent(index.name)} ON ${table} (${quoteIdent(index.column)})`,
      ),
    ],
    down: [`DROP TABLE ${table}`],
  };
}

/**
 * django-rest-knox's own table, exactly as its migrations 0001–0009 leave it (names, the
 * `varchar_pattern_ops` indexes, the deferred foreign key without cascade): for a database where
 * nestjs-knox comes first and Django joins later (`manage.py migrate knox --fake`).
 */
export function createDjangoTableSql(
  token: KnoxTablePath,
  user: KnoxUserTableRef,
): string[] {
  const names = knoxTableNames(token.table, 'django', {
    table: user.path.table,
    column: user.column,
  });
  const table = quotePath(token);
  const [digestLike, tokenKey, tokenKeyLike, userId] = names.indexes;
  return [
    `CREATE TABLE ${table} (
  "digest" character varying(128) NOT NULL,
  "created" timestamp with time zone NOT NULL,
  "user_id" ${user.type} NOT NULL,
  "expiry" timestamp with time zone,
  "token_key" character varying(25) NOT NULL
)`,
    `ALTER TABLE ${table} ADD CONSTRAINT ${quoteIdent(names.primaryKey)} PRIMARY KEY ("digest")`,
    `CREATE INDEX ${quoteIdent(digestLike.name)} ON ${table} ("digest" varchar_pattern_ops)`,
    `CREATE INDEX ${quoteIdent(tokenKey.name)} ON ${table} ("token_key")`,
    `CREATE INDEX ${quoteIdent(tokenKeyLike.name)} ON ${table} ("token_key" varchar_pattern_ops)`,
    `CREATE INDEX ${quoteIdent(userId.name)} ON ${table} ("user_id")`,
    `ALTER TABLE ${table} ADD CONSTRAINT ${quoteIdent(names.foreignKey)} FOREIGN KEY ("user_id") REFERENCES ${quotePath(user.path)} (${quoteIdent(user.column)}) DEFERRABLE INITIALLY DEFERRED`,
  ];
}

/**
 * Adds what nestjs-knox needs to django-rest-knox's `knox_authtoken`: its columns (every existing
 * row gets a fresh `id`; the default stays so that Django's inserts get one too), the unique
 * constraint on `id` and the `expiry` index. Touches none of Django's columns, constraints,
 * indexes or rows; `down` removes exactly what `up` added.
 */
export function djangoTakeoverSql(token: KnoxTablePath): KnoxMigrationSql {
  const names = knoxTableNames(token.table, 'django');
  const table = quotePath(token);
  const expiryIndex = names.indexes.find((index) => index.column === 'expiry')!;
  return {
    up: [
      `ALTER TABLE ${table}
  ADD COLUMN "id" uuid NOT NULL DEFAULT gen_random_uuid(),
  ADD COLUMN "ttl_ms" bigint,
  ADD COLUMN "name" character varying(200),
  ADD COLUMN "user_agent" character varying(512),
  ADD COLUMN "ip" character varying(45),
  ADD COLUMN "last_used_at" timestamp with time zone,
  ADD COLUMN "retired_at" timestamp with time zone,
  ADD CONSTRAINT ${quoteIdent(names.idUnique)} UNIQUE ("id")`,
      `CREATE INDEX ${quoteIdent(expiryIndex.name)} ON ${table} ("expiry")`,
    ],
    down: [
      `DROP INDEX ${quotePath({ schema: token.schema, table: expiryIndex.name })}`,
      `ALTER TABLE ${table}
  DROP CONSTRAINT ${quoteIdent(names.idUnique)},
  DROP COLUMN "id",
  DROP COLUMN "ttl_ms",
  DROP COLUMN "name",
  DROP COLUMN "user_agent",
  DROP COLUMN "ip",
  DROP COLUMN "last_used_at",
  DROP COLUMN "retired_at"`,
    ],
  };
}

import { createHash } from 'node:crypto';
import type { Type } from '@nestjs/common';
import { getMetadataArgsStorage } from 'typeorm';

/**
 * The layout of the token table.
 * - `'knox'`: the table nestjs-knox creates (its migration, or `synchronize`): foreign key with
 *   `ON DELETE CASCADE`, PostgreSQL-style constraint names, indexes named `<table>_<column>_idx`.
 * - `'django'`: a table that django-rest-knox created (then taken over with the shipped takeover
 *   migration): Django's foreign key (no cascade, `DEFERRABLE INITIALLY DEFERRED`) and Django's
 *   constraint and index names, so TypeORM never drops or renames what Django made.
 */
export type KnoxTableSchema = 'knox' | 'django';

/** Default name of the token table (django-rest-knox's). */
export const KNOX_DEFAULT_TABLE_NAME = 'knox_authtoken';

/** A possibly schema-qualified table name split in its parts. */
export interface KnoxTablePath {
  schema: string | undefined;
  table: string;
}

/** Splits `schema.table`; `defaultSchema` applies to an unqualified name. */
export function splitTablePath(
  name: string,
  defaultSchema?: string,
): KnoxTablePath {
  const dot = name.lastIndexOf('.');
  return dot === -1
    ? { schema: defaultSchema, table: name }
    : { schema: name.slice(0, dot), table: name.slice(dot + 1) };
}

/** Quotes an identifier for PostgreSQL. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** `"schema"."table"`, or `"table"` when no schema is given. */
export function quotePath(path: KnoxTablePath): string {
  return path.schema === undefined
    ? quoteIdent(path.table)
    : `${quoteIdent(path.schema)}.${quoteIdent(path.table)}`;
}

/**
 * The name Django's schema editor gives an index or constraint (`BaseDatabaseSchemaEditor.
 * _create_index_name`, PostgreSQL's 63-character limit): `<table>_<columns>_<md5 8><suffix>`.
 */
export function djangoIndexName(
  table: string,
  columns: string[],
  suffix = '',
): string {
  const hash = createHash('md5');
  for (const part of [table, ...columns]) {
    hash.update(part);
  }
  const hashSuffix = `${hash.digest('hex').slice(0, 8)}${suffix}`;
  const name = `${table}_${columns.join('_')}_${hashSuffix}`;
  if (name.length <= 63) {
    return name;
  }
  const other = Math.floor((63 - hashSuffix.length) / 2) - 1;
  const short = `${table.slice(0, other)}_${columns.join('_').slice(0, other)}_${hashSuffix}`;
  return /^[_\d]/.test(short) ? `D${short.slice(0, -1)}` : short;
}

/** The constraint and index names of the token table, by layout. */
export interface KnoxTableNames {
  primaryKey: string;
  idUnique: string;
  foreignKey: string;
  /** Index name → column, as the entity declares them. */
  indexes: {
    name: string;
    column: 'digest' | 'token_key' | 'user_id' | 'expiry';
  }[];
}

/**
 * Names of the token table's constraints and indexes. They are fixed strings (not TypeORM's
 * naming strategy), so that the shipped migrations, the entity and the docs agree whatever naming
 * strategy the app uses.
 */
export function knoxTableNames(
  tableName: string,
  schema: KnoxTableSchema,
  userRef: { table: string; column: string } = {
    table: 'auth_user',
    column: 'id',
  },
): KnoxTableNames {
  const table = splitTablePath(tableName).table;
  return schema === 'django'
    ? djangoLayoutNames(table, userRef)
    : knoxLayoutNames(table);
}

/** The names nestjs-knox gives (layout `'knox'`): PostgreSQL's own style. */
function knoxLayoutNames(table: string): KnoxTableNames {
  return {
    primaryKey: `${table}_pkey`,
    idUnique: `${table}_id_key`,
    foreignKey: `${table}_user_id_fkey`,
    indexes: [
      { name: `${table}_token_key_idx`, column: 'token_key' },
      { name: `${table}_expiry_idx`, column: 'expiry' },
      { name: `${table}_user_id_idx`, column: 'user_id' },
    ],
  };
}

/**
 * The names of a table django-rest-knox created (layout `'django'`): Django's hashed names for
 * its foreign key and indexes, PostgreSQL's for the rest and for the `expiry` index we add.
 */
function djangoLayoutNames(
  table: string,
  userRef: { table: string; column: string },
): KnoxTableNames {
  return {
    primaryKey: `${table}_pkey`,
    idUnique: `${table}_id_key`,
    foreignKey: djangoIndexName(
      table,
      ['user_id'],
      `_fk_${userRef.table}_${userRef.column}`,
    ),
    indexes: [
      { name: djangoIndexName(table, ['digest'], '_like'), column: 'digest' },
      { name: djangoIndexName(table, ['token_key']), column: 'token_key' },
      {
        name: djangoIndexName(table, ['token_key'], '_like'),
        column: 'token_key',
      },
      { name: djangoIndexName(table, ['user_id']), column: 'user_id' },
      { name: `${table}_expiry_idx`, column: 'expiry' },
    ],
  };
}

/**
 * The user table and primary-key column as the user entity's decorators declare them (read
 * before any DataSource exists, for Django's foreign-key name). Falls back to TypeORM's defaults.
 */
export function declaredUserRef(userEntity: Type<unknown>): {
  table: string;
  column: string;
} {
  const storage = getMetadataArgsStorage();
  const tableArgs = storage.tables.find((t) => t.target === userEntity);
  const primary = storage.columns.find(
    (c) =>
      c.options.primary &&
      (c.target === userEntity ||
        (typeof c.target === 'function' &&
          userEntity.prototype instanceof c.target)),
  );
  return {
    table: splitTablePath(tableArgs?.name ?? snakeCase(userEntity.name)).table,
    column: primary?.options.name ?? primary?.propertyName ?? 'id',
  };
}

function snakeCase(name: string): string {
  return name
    .replace(/([a-z\d])([A-Z])/g, '$1_$2')
    .replace(/([A-Z])([A-Z][a-z])/g, '$1_$2')
    .toLowerCase();
}

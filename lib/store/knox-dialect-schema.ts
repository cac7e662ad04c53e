import type { DataSource } from 'typeorm';
import type { KnoxDialect } from './knox-dialect.js';

/* The boot schema check's one query, per dialect, in the shape PostgreSQL's gives. */

/** A column of the token table as the schema check reads it. */
export interface KnoxDbColumn {
  column_name: string;
  data_type: string;
  character_maximum_length: number | null;
  is_nullable: 'YES' | 'NO';
  /** The element type of an array column with a leading `_` (`_text` for `text[]`). */
  udt_name: string;
}

/** The columns of table `table` (in `schema`, else the connection's own), by dialect. */
export async function knoxTableColumns(
  dataSource: DataSource,
  dialect: KnoxDialect,
  schema: string | undefined,
  table: string,
): Promise<KnoxDbColumn[]> {
  switch (dialect) {
    case 'postgres':
      return dataSource.query(
        `SELECT column_name, data_type, character_maximum_length, is_nullable, udt_name
           FROM information_schema.columns
          WHERE table_schema = COALESCE($1, current_schema()) AND table_name = $2`,
        [schema ?? null, table],
      );
    case 'mysql': {
      // Aliased: MySQL 8 names information_schema's columns in capitals.
      const rows: KnoxDbColumn[] = await dataSource.query(
        `SELECT column_name AS column_name, data_type AS data_type,
                character_maximum_length AS character_maximum_length,
                is_nullable AS is_nullable, '' AS udt_name
           FROM information_schema.columns
          WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ?`,
        [schema ?? null, table],
      );
      return rows.map((row) => ({
        ...row,
        data_type: String(row.data_type).toLowerCase(),
        character_maximum_length:
          row.character_maximum_length === null
            ? null
            : Number(row.character_maximum_length),
      }));
    }
    case 'sqlite':
      return sqliteColumns(dataSource, table);
  }
}

/** SQLite's declared types (`varchar(128)`) split into type and length, from PRAGMA table_info. */
async function sqliteColumns(
  dataSource: DataSource,
  table: string,
): Promise<KnoxDbColumn[]> {
  const rows: { name: string; type: string; notnull: number; pk: number }[] =
    await dataSource.query(
      `SELECT name, type, "notnull", pk FROM pragma_table_info(?)`,
      [table],
    );
  return rows.map((row) => {
    const match = /^([^(]+?)\s*(?:\((\d+)\))?$/.exec(row.type.trim());
    return {
      column_name: row.name,
      data_type: (match?.[1] ?? row.type).toLowerCase(),
      character_maximum_length: match?.[2] ? Number(match[2]) : null,
      is_nullable: row.notnull || row.pk ? 'NO' : 'YES',
      udt_name: '',
    };
  });
}

import type { DataSource } from 'typeorm';

/** A column as the boot schema check reads it (the shape of `information_schema.columns`). */
export interface KnoxColumnInfo {
  column_name: string;
  data_type: string;
  character_maximum_length: number | null;
  is_nullable: 'YES' | 'NO';
  udt_name: string;
}

interface TableInfoRow {
  name: string;
  /** The declared type as written in the DDL: `varchar(64)`, `datetime`, `integer`. */
  type: string;
  notnull: number;
  pk: number;
}

/**
 * The columns of `table` on SQLite (`PRAGMA table_info`, which has no information_schema), in
 * the shape the boot schema check compares: the declared type split into its name and length,
 * lower case as TypeORM's SQLite driver normalizes types. None when the table does not exist.
 */
export async function knoxSqliteColumns(
  dataSource: DataSource,
  table: string,
): Promise<KnoxColumnInfo[]> {
  const rows = (await dataSource.query(
    `SELECT name, type, "notnull", pk FROM pragma_table_info(?)`,
    [table],
  )) as TableInfoRow[];
  return rows.map((row) => {
    const match = /^\s*([^(]*?)\s*(?:\(\s*(\d+)\s*\))?\s*$/.exec(row.type);
    return {
      column_name: row.name,
      data_type: (match?.[1] ?? row.type).toLowerCase(),
      character_maximum_length: match?.[2] ? Number(match[2]) : null,
      is_nullable: row.notnull ? 'NO' : 'YES',
      udt_name: '',
    };
  });
}

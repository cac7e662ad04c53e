import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DataSource } from 'typeorm';
import { knoxSqliteColumns } from './knox-sqlite-schema.js';

describe('knoxSqliteColumns', () => {
  const ds = new DataSource({ type: 'better-sqlite3', database: ':memory:' });
  beforeAll(async () => {
    await ds.initialize();
    await ds.query(
      `CREATE TABLE "knox_authtoken" ("digest" varchar(128) PRIMARY KEY NOT NULL, "token_key" VARCHAR ( 25 ) NOT NULL, "expiry" datetime, "abilities" text NOT NULL DEFAULT ('["*"]'))`,
    );
  });
  afterAll(() => ds.destroy());

  it('reads PRAGMA table_info in the shape of information_schema.columns', async () => {
    expect(await knoxSqliteColumns(ds, 'knox_authtoken')).toEqual([
      col('digest', 'varchar', 128, 'NO'),
      col('token_key', 'varchar', 25, 'NO'),
      col('expiry', 'datetime', null, 'YES'),
      col('abilities', 'text', null, 'NO'),
    ]);
  });

  it('finds no column for a table that does not exist', async () => {
    expect(await knoxSqliteColumns(ds, 'nope')).toEqual([]);
  });
});

function col(
  column_name: string,
  data_type: string,
  character_maximum_length: number | null,
  is_nullable: 'YES' | 'NO',
) {
  return {
    column_name,
    data_type,
    character_maximum_length,
    is_nullable,
    udt_name: '',
  };
}

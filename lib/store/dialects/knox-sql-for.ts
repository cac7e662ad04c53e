import type { KnoxDialect } from '../knox-dialect.js';
import { knoxMysqlSql } from './knox-mysql-sql.js';
import { knoxPostgresSql } from './knox-postgres-sql.js';
import { knoxSqliteSql } from './knox-sqlite-sql.js';
import type { KnoxSql, KnoxSqlTables } from './knox-sql.js';

/** The statements of `dialect` on these tables. */
export function knoxSqlFor(
  dialect: KnoxDialect,
  tables: KnoxSqlTables,
): KnoxSql {
  switch (dialect) {
    case 'postgres':
      return knoxPostgresSql(tables);
    case 'mysql':
      return knoxMysqlSql(tables);
    case 'sqlite':
      return knoxSqliteSql(tables);
  }
}

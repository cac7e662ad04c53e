/** The database families the invalidation log has DDL for. */
export function cacheLogDialectOf(
  type: string,
): 'postgres' | 'mysql' | 'sqlite' {
  if (type === 'postgres') {
    return 'postgres';
  }
  if (type === 'mysql' || type === 'mariadb') {
    return 'mysql';
  }
  if (type === 'better-sqlite3') {
    return 'sqlite';
  }
  throw new Error(
    `knox cache log: the '${type}' driver is not supported; the supported drivers are postgres, mysql / mariadb (mysql2) and better-sqlite3.`,
  );
}

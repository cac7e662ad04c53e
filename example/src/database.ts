import type { TypeOrmModuleOptions } from '@nestjs/typeorm';
import { resolve } from 'node:path';
import { AdvancedConsoleLogger } from 'typeorm';

/** The databases the example runs on, chosen by the scheme of `DATABASE_URL`. */
export type ExampleDatabaseKind = 'postgres' | 'mysql' | 'sqlite';

/**
 * Timeouts for the `pg` pool (TypeORM hands `extra` to `pg.Pool`), so that a stalled database
 * answers 503 within seconds instead of holding each request for as long as its client waits
 * (minutes, when packets are dropped). SECURITY.md, "Database outages", explains each one.
 */
export const DATABASE_TIMEOUTS = {
  /** A connection attempt that gets no answer (server down, a black hole) fails after 3 s. */
  connectionTimeoutMillis: 3_000,
  /**
   * The server cancels a statement still running after 4 s (waiting on a lock a migration holds,
   * an overloaded server); the connection stays usable. Below `query_timeout`, so the server
   * gets to cancel first whenever it can.
   */
  statement_timeout: 4_000,
  /**
   * The client gives up on a query whose answer has not come after 5 s: packets dropped on an
   * open connection, where the server never saw the query and cannot cancel it.
   */
  query_timeout: 5_000,
  /** TCP keep-alive, so that dead connections are noticed. */
  keepAlive: true,
} as const;

/**
 * TypeORM's console logger without its slow-query lines. On MySQL the query timeout is TypeORM's
 * `maxQueryExecutionTime`, which also logs every statement slower than that, with its parameters
 * (token digests): during an outage, a line per request. The library's outage log reports an
 * outage in a few summary lines instead.
 */
class NoSlowQueryLogger extends AdvancedConsoleLogger {
  override logQuerySlow(): void {}
}

/** An unusable `DATABASE_URL`: the message says which URLs work. */
export class ExampleDatabaseUrlError extends Error {}

/**
 * Which database `url` names: `postgres://` / `postgresql://`, `mysql://` / `mariadb://`, or
 * `sqlite:<file>` (`sqlite:.data/example.sqlite`, `sqlite:///tmp/example.sqlite`).
 */
export function exampleDatabaseKind(url: string): ExampleDatabaseKind {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  switch (scheme) {
    case 'postgres':
    case 'postgresql':
      return 'postgres';
    case 'mysql':
    case 'mariadb':
      return 'mysql';
    case 'sqlite':
      return 'sqlite';
    default:
      throw new ExampleDatabaseUrlError(
        `DATABASE_URL must start with postgres://, mysql:// (or mariadb://) or sqlite: ; got ${scheme ? `${scheme}:` : 'no scheme'}`,
      );
  }
}

/** The SQLite file a `sqlite:` URL names (relative paths from the working directory). */
export function sqliteFileOf(url: string): string {
  const path = url.replace(/^sqlite:(\/\/)?/i, '');
  if (path === '') {
    throw new ExampleDatabaseUrlError(
      'DATABASE_URL=sqlite: needs a file, e.g. sqlite:.data/example.sqlite',
    );
  }
  return resolve(path);
}

/** The name shown in the example's start-up line. */
export const DATABASE_LABELS: Record<ExampleDatabaseKind, string> = {
  postgres: 'PostgreSQL',
  mysql: 'MySQL/MariaDB',
  sqlite: 'SQLite',
};

/**
 * TypeORM's options for the database at `url` (`schema`: a PostgreSQL schema for the tables). The
 * same entities and `KnoxModule` options on each: only the connection differs.
 */
export function typeOrmOptionsFor(
  url: string,
  schema?: string,
): TypeOrmModuleOptions {
  const common = {
    autoLoadEntities: true,
    // Fine for an example; a real app runs migrations.
    synchronize: true,
  } as const;
  switch (exampleDatabaseKind(url)) {
    case 'postgres':
      return {
        ...common,
        type: 'postgres',
        url,
        schema,
        extra: { ...DATABASE_TIMEOUTS },
      };
    case 'mysql':
      return {
        ...common,
        type: 'mysql',
        url: url.replace(/^mariadb:/i, 'mysql:'),
        // Times in UTC, as knox_authtoken's columns are documented (docs/database.md).
        timezone: 'Z',
        connectTimeout: DATABASE_TIMEOUTS.connectionTimeoutMillis,
        // mysql2 has no pool-wide query timeout: TypeORM gives each query mysql2's `timeout`
        // (the client gives up on an answer that never comes, as pg's query_timeout).
        enableQueryTimeout: true,
        maxQueryExecutionTime: DATABASE_TIMEOUTS.query_timeout,
        logger: new NoSlowQueryLogger(),
      };
    case 'sqlite':
      return {
        ...common,
        type: 'better-sqlite3',
        database: sqliteFileOf(url),
      };
  }
}

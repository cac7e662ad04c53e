/**
 * The benchmark's database: PostgreSQL, MariaDB/MySQL or SQLite, chosen by `BENCH_DB`
 * (`postgres` | `mariadb` | `sqlite`) or by the scheme of `DATABASE_URL` (`postgres://…`,
 * `mysql://…` / `mariadb://…`, `sqlite:<file>`). TypeORM's options for the bench apps, and a raw
 * client (the driver itself, outside TypeORM) for the parent's SQL: seeding checks, revocations
 * by SQL, the scale table.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';

export type BenchDbKind = 'postgres' | 'mariadb' | 'sqlite';

export interface BenchDb {
  kind: BenchDbKind;
  /** The URL every process connects with (`sqlite:<file>` on SQLite). */
  url: string;
  /** Removes what was created for the run (SQLite's temp file). */
  cleanup(): void;
}

const DEFAULTS: Record<BenchDbKind, string> = {
  postgres: 'postgres://postgres@127.0.0.1:5432/knox_bench',
  mariadb: 'mysql://root@127.0.0.1:3306/knox_bench',
  sqlite: '',
};

function kindOfUrl(url: string): BenchDbKind {
  if (/^postgres(ql)?:\/\//.test(url)) {
    return 'postgres';
  }
  if (/^(mysql|mariadb):\/\//.test(url)) {
    return 'mariadb';
  }
  if (url.startsWith('sqlite:')) {
    return 'sqlite';
  }
  throw new Error(
    `DATABASE_URL=${url}: use postgres://…, mysql://… (or mariadb://…) or sqlite:<file>`,
  );
}

/** Resolves the run's database from BENCH_DB and DATABASE_URL (in the parent process). */
export function resolveBenchDb(env = process.env): BenchDb {
  const given = env.BENCH_DB;
  if (given && !['postgres', 'mariadb', 'sqlite'].includes(given)) {
    throw new Error(`BENCH_DB=${given}: use postgres, mariadb or sqlite`);
  }
  const fromUrl = env.DATABASE_URL ? kindOfUrl(env.DATABASE_URL) : undefined;
  const kind = (given ?? fromUrl ?? 'postgres') as BenchDbKind;
  if (fromUrl === kind) {
    return { kind, url: env.DATABASE_URL!, cleanup: () => undefined };
  }
  if (kind !== 'sqlite') {
    return { kind, url: DEFAULTS[kind], cleanup: () => undefined };
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'knox-bench-sqlite-'));
  return {
    kind,
    url: `sqlite:${path.join(dir, 'bench.sqlite')}`,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The kind of a URL handed to a child process. */
export const benchDbKind = kindOfUrl;

const sqliteFile = (url: string) => url.slice('sqlite:'.length);

/**
 * TypeORM's connection options for the bench apps. MariaDB stores UTC (`timezone: 'Z'`); SQLite
 * gets TypeORM's defaults (rollback journal, busy timeout 5000 ms) unless BENCH_SQLITE_WAL=1.
 */
export function typeOrmOptions(
  url: string,
  poolSize: number,
): Record<string, unknown> & { type: string } {
  switch (kindOfUrl(url)) {
    case 'postgres':
      return { type: 'postgres', url, poolSize };
    case 'mariadb':
      return { type: 'mariadb', url, timezone: 'Z', poolSize };
    case 'sqlite':
      return {
        type: 'better-sqlite3',
        database: sqliteFile(url),
        enableWAL: process.env.BENCH_SQLITE_WAL === '1',
      };
  }
}

/** A raw client on the bench database: `$1…$n` placeholders, in order, each used once. */
export interface RawDb {
  kind: BenchDbKind;
  query<R = Record<string, unknown>>(
    sql: string,
    params?: unknown[],
  ): Promise<R[]>;
  close(): Promise<void>;
}

export async function openRawDb(url: string): Promise<RawDb> {
  const kind = kindOfUrl(url);
  if (kind === 'postgres') {
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
    } catch (error) {
      if ((error as { code?: string }).code === '3D000') {
        console.error(
          `The database of ${redact(url)} does not exist; create it, e.g.\n` +
            `  psql -h 127.0.0.1 -U postgres -d postgres -c 'create database knox_bench'`,
        );
      }
      throw error;
    }
    return {
      kind,
      query: async <R>(sql: string, params?: unknown[]) =>
        (await client.query(sql, params)).rows as R[],
      close: () => client.end(),
    };
  }
  const positional = (sql: string) => sql.replace(/\$\d+/g, '?');
  if (kind === 'mariadb') {
    const { default: mysql } = await import('mysql2/promise');
    const connection = await mysql
      .createConnection({ uri: url, timezone: 'Z' })
      .catch((error: { code?: string }) => {
        if (error.code === 'ER_BAD_DB_ERROR') {
          console.error(
            `The database of ${redact(url)} does not exist; create it, e.g.\n` +
              `  mysql -h127.0.0.1 -uroot -e "CREATE DATABASE knox_bench CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"`,
          );
        }
        throw error;
      });
    return {
      kind,
      query: async <R>(sql: string, params?: unknown[]) =>
        (await connection.query(positional(sql), params))[0] as R[],
      close: () => connection.end(),
    };
  }
  // better-sqlite3 ships no types (TypeORM's optional driver): what is used of it.
  const Database = createRequire(import.meta.url)('better-sqlite3') as new (
    file: string,
    options: object,
  ) => {
    prepare(sql: string): {
      reader: boolean;
      all(...params: unknown[]): unknown[];
      run(...params: unknown[]): unknown;
    };
    close(): void;
  };
  const db = new Database(sqliteFile(url), { timeout: 5000 });
  return {
    kind,
    query: <R>(sql: string, params: unknown[] = []) => {
      const statement = db.prepare(positional(sql));
      return Promise.resolve(
        (statement.reader
          ? statement.all(...params)
          : (statement.run(...params), [])) as R[],
      );
    },
    close: () => Promise.resolve(void db.close()),
  };
}

/** The server's version, as the benchmark prints it. */
export async function serverVersion(
  query: (sql: string) => Promise<unknown>,
  kind: BenchDbKind,
): Promise<string> {
  const sql = {
    postgres: 'SELECT version() AS v',
    mariadb: 'SELECT VERSION() AS v',
    sqlite: 'SELECT sqlite_version() AS v',
  }[kind];
  const [row] = (await query(sql)) as { v: string }[];
  return kind === 'postgres'
    ? row.v.replace(/ on .*|,.*/, '')
    : `${kind === 'mariadb' ? 'MariaDB/MySQL' : 'SQLite'} ${row.v}`;
}

/** The statements that empty the bench's tables (identities restarted). */
export function emptyTablesSql(kind: BenchDbKind, tables: string[]): string[] {
  switch (kind) {
    case 'postgres':
      return [`TRUNCATE ${tables.join(', ')} RESTART IDENTITY CASCADE`];
    case 'mariadb':
      return [
        ...tables.map((table) => `DELETE FROM ${table}`),
        ...tables.map((table) => `ALTER TABLE ${table} AUTO_INCREMENT = 1`),
      ];
    case 'sqlite':
      return [
        ...tables.map((table) => `DELETE FROM ${table}`),
        `DELETE FROM sqlite_sequence WHERE name IN (${tables.map((t) => `'${t}'`).join(', ')})`,
      ];
  }
}

export function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}

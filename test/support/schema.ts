import 'reflect-metadata';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { DATABASE_URL, EMBEDDED_DB } from './test-app.js';

/** A fresh, empty PostgreSQL schema in the test database (per-test isolation). */
export interface TestSchema {
  name: string;
  drop(): Promise<void>;
}

async function withClient<T>(
  url: string,
  fn: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Creates `knox_schema_<random>` (empty); `drop()` removes it with everything in it. */
export async function createTestSchema(
  url = DATABASE_URL,
): Promise<TestSchema> {
  const name = `knox_schema_${randomBytes(5).toString('hex')}`;
  await withClient(url, (c) => c.query(`CREATE SCHEMA "${name}"`));
  return {
    name,
    drop: () =>
      withClient(url, (c) => c.query(`DROP SCHEMA "${name}" CASCADE`)).then(
        () => undefined,
      ),
  };
}

/** A data source on the test database, with `schema` as its default schema. */
export async function openDataSource(
  options: Partial<DataSourceOptions> & { schema: string; url?: string },
): Promise<DataSource> {
  const dataSource = new DataSource({
    type: 'postgres',
    url: options.url ?? DATABASE_URL,
    synchronize: false,
    logging: false,
    ...options,
  } as DataSourceOptions);
  return dataSource.initialize();
}

/**
 * What TypeORM's schema diff (the SQL `schema:log` prints and `migration:generate` writes)
 * contains for `table`: statements naming it (its columns, constraints and indexes).
 */
export async function pendingSchemaChanges(
  dataSource: DataSource,
  table = 'knox_authtoken',
): Promise<string[]> {
  const sql = await dataSource.driver.createSchemaBuilder().log();
  // PostgreSQL and SQLite quote with ", MySQL with `.
  const mentions = new RegExp(`["\`]${table}["\`]|\\b${table}_`);
  return sql.upQueries.map((q) => q.query).filter((q) => mentions.test(q));
}

/** Everything PostgreSQL knows of a table's shape, comparable before and after a migration. */
export interface TableShape {
  columns: Record<string, unknown>[];
  constraints: Record<string, unknown>[];
  indexes: Record<string, unknown>[];
}

/** NOT NULL constraints (listed in pg_constraint from PostgreSQL 18) show in `columns` instead. */
export async function tableShape(
  dataSource: DataSource,
  schema: string,
  table: string,
): Promise<TableShape> {
  const columns = await dataSource.query(
    `SELECT column_name, ordinal_position, data_type, character_maximum_length, is_nullable,
            column_default
       FROM information_schema.columns
      WHERE table_schema = $1 AND table_name = $2
      ORDER BY ordinal_position`,
    [schema, table],
  );
  const constraints = await dataSource.query(
    `SELECT c.conname, c.contype, pg_get_constraintdef(c.oid) AS definition,
            c.condeferrable, c.condeferred
       FROM pg_constraint c
       JOIN pg_class t ON t.oid = c.conrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace
      WHERE n.nspname = $1 AND t.relname = $2 AND c.contype <> 'n'
      ORDER BY c.conname`,
    [schema, table],
  );
  const indexes = await dataSource.query(
    `SELECT indexname, indexdef FROM pg_indexes
      WHERE schemaname = $1 AND tablename = $2 ORDER BY indexname`,
    [schema, table],
  );
  return { columns, constraints, indexes };
}

/** All rows of a table as JSON text, ordered, for before/after comparisons. */
export async function tableRows(
  dataSource: DataSource,
  path: string,
  orderBy: string,
): Promise<unknown[]> {
  const rows: { row: unknown }[] = await dataSource.query(
    `SELECT to_jsonb(t) AS row FROM ${path} t ORDER BY ${orderBy}`,
  );
  return rows.map((r) => r.row);
}

/** The django-rest-knox fixture folder: `<repo>/../shared/fixtures/django-knox`, else /work/shared. */
export function djangoFixtureDir(): string {
  const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const candidates = [
    join(repo, '..', 'shared', 'fixtures', 'django-knox'),
    '/work/shared/fixtures/django-knox',
  ];
  const found = candidates.find((dir) => existsSync(join(dir, 'schema.sql')));
  if (!found) {
    throw new Error(
      `django-knox fixture not found; looked in ${candidates.join(', ')}`,
    );
  }
  return found;
}

export function readDjangoFixture(file: string): string {
  return readFileSync(join(djangoFixtureDir(), file), 'utf8');
}

/** Where a Django fixture was loaded: its own database (real server) or a schema (PGlite). */
export interface DjangoDatabase {
  url: string;
  /** The PostgreSQL schema holding `auth_user` and `knox_authtoken`. */
  schema: string;
  drop(): Promise<void>;
}

/**
 * Loads the fixture's `schema.sql` then `data.sql`, each in its own session as its README says.
 * On a real server: into a fresh database `knox_schema_dj_<random>`, files as they are. On the
 * embedded PGlite (one database only): into a fresh schema, with the files' `public.` qualifier
 * pointed at it.
 */
export async function loadDjangoFixture(): Promise<DjangoDatabase> {
  const schemaSql = readDjangoFixture('schema.sql');
  const dataSql = readDjangoFixture('data.sql');
  if (EMBEDDED_DB) {
    const schema = await createTestSchema();
    const retarget = (sql: string) =>
      sql.replace(/\bpublic\./g, `"${schema.name}".`);
    await withClient(DATABASE_URL, (c) => c.query(retarget(schemaSql)));
    await withClient(DATABASE_URL, (c) => c.query(retarget(dataSql)));
    // The pg_dump files empty the session's search_path; PGlite's one session is every
    // connection's, so put it back or later apps cannot create their tables.
    await withClient(DATABASE_URL, (c) => c.query('RESET search_path'));
    return { url: DATABASE_URL, schema: schema.name, drop: schema.drop };
  }
  const database = `knox_schema_dj_${randomBytes(5).toString('hex')}`;
  await withClient(DATABASE_URL, (c) =>
    c.query(`CREATE DATABASE "${database}"`),
  );
  const url = new URL(DATABASE_URL);
  url.pathname = `/${database}`;
  await withClient(url.toString(), (c) => c.query(schemaSql));
  await withClient(url.toString(), (c) => c.query(dataSql));
  return {
    url: url.toString(),
    schema: 'public',
    drop: () =>
      withClient(DATABASE_URL, (c) =>
        c.query(`DROP DATABASE "${database}" WITH (FORCE)`),
      ).then(() => undefined),
  };
}

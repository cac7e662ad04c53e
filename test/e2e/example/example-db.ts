/**
 * Where the example app's e2e tests boot it: the run's database, as `DATABASE_URL` names it for
 * `npm start` (`postgres://`, `mysql://`, `sqlite:`), with a place of its own there: a schema of
 * the PostgreSQL database, a database next to the MariaDB one (`<run's database>_<suffix>`), a
 * fresh SQLite file.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import {
  TEST_DB,
  testConnectionOptions,
  testServerUrl,
} from '../../support/test-db.js';

export interface ExampleDatabase {
  /** The example's DATABASE_URL. */
  url: string;
  /** The PostgreSQL schema of its tables (undefined elsewhere). */
  schema: string | undefined;
  /** A table of the example, qualified where it has to be (PostgreSQL's schema). */
  table(name: string): string;
  /** Makes the place empty (dropped and created again). */
  create(): Promise<void>;
  /** Removes it. */
  drop(): Promise<void>;
}

/** Runs statements on the run's server, straight (not through a proxy). */
async function onServer(statements: string[]): Promise<void> {
  const direct = new DataSource(
    testConnectionOptions() as ConstructorParameters<typeof DataSource>[0],
  );
  await direct.initialize();
  try {
    for (const statement of statements) {
      await direct.query(statement);
    }
  } finally {
    await direct.destroy();
  }
}

/** `name`: the schema on PostgreSQL, the database suffix on MariaDB (`knox_example` → `…_example`). */
export function exampleDatabase(name: string): ExampleDatabase {
  switch (TEST_DB) {
    case 'postgres':
      return {
        url: testServerUrl()!,
        schema: name,
        table: (table) => `${name}.${table}`,
        create: () =>
          onServer([
            `DROP SCHEMA IF EXISTS ${name} CASCADE`,
            `CREATE SCHEMA ${name}`,
          ]),
        drop: () => onServer([`DROP SCHEMA IF EXISTS ${name} CASCADE`]),
      };
    case 'mariadb': {
      const url = new URL(testServerUrl()!);
      const database = `${url.pathname.slice(1)}_${name.replace(/^knox_/, '')}`;
      url.pathname = `/${database}`;
      return {
        url: url.toString(),
        schema: undefined,
        table: (table) => table,
        // Case-sensitive text, like the run's database (global-setup).
        create: () =>
          onServer([
            `DROP DATABASE IF EXISTS \`${database}\``,
            `CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
          ]),
        drop: () => onServer([`DROP DATABASE IF EXISTS \`${database}\``]),
      };
    }
    case 'sqlite': {
      // Made by create(), not here: a skipped describe leaves nothing behind.
      const dir = join(tmpdir(), `${name}-${process.pid}-${randomUUID()}`);
      const file = join(dir, 'example.sqlite');
      return {
        url: `sqlite:${file}`,
        schema: undefined,
        table: (table) => table,
        create: async () => {
          rmSync(dir, { recursive: true, force: true });
          mkdirSync(dir);
        },
        drop: async () => rmSync(dir, { recursive: true, force: true }),
      };
    }
  }
}

/**
 * Issue 21: the invalidation log on MariaDB (mysql2) and SQLite (better-sqlite3), at the level
 * of its DDL and reader (the module itself runs there once the data source's dialect seam
 * lands): each writer appends what it changed, the reader returns it once, a MariaDB
 * transaction that commits after later ones is still read, pruning by age, and `down`.
 * Skipped when the driver package is not installed (they are optional peers).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DataSource, type DataSourceOptions } from 'typeorm';
import {
  dropKnoxCacheLog,
  hasKnoxCacheLog,
  installKnoxCacheLog,
} from '../../../lib/store/cache-log/knox-cache-log.migration.js';
import {
  knoxCacheLogReader,
  type KnoxCacheLogReader,
} from '../../../lib/store/cache-log/knox-cache-log-reader.js';
import { TEST_MYSQL_URL } from '../../support/test-db.js';

const require = createRequire(import.meta.url);
const has = (name: string) => {
  try {
    require.resolve(name);
    return true;
  } catch {
    return false;
  }
};

// A database of its own beside the run's one (the suite's tables carry the library's triggers,
// which write to the run's knox_cache_log: dropping it there would break every later file).
const MARIADB_URL = (() => {
  const url = new URL(TEST_MYSQL_URL);
  url.pathname = `${url.pathname}_poll`;
  return url.toString();
})();
const MARIADB_DB = new URL(MARIADB_URL).pathname.slice(1);
const dir = mkdtempSync(path.join(tmpdir(), 'knox-poll-'));

interface Dialect {
  name: string;
  available: boolean;
  options: () => DataSourceOptions;
  /** Creates the database where the server needs one. */
  prepare?: () => Promise<void>;
  tables: string[];
  /** A second writer outside TypeORM (what a DBA or another app would be). */
  other: () => Promise<{
    query(sql: string, params?: unknown[]): Promise<unknown>;
    end(): Promise<void>;
  }>;
}

const dialects: Dialect[] = [
  {
    name: 'mariadb',
    // The MariaDB server is there on the KNOX_TEST_DB=mariadb run (npm test itself needs none).
    available: has('mysql2') && process.env.KNOX_TEST_DB === 'mariadb',
    options: () => ({ type: 'mariadb', url: MARIADB_URL }),
    prepare: async () => {
      const mysql = require('mysql2/promise') as {
        createConnection(url: string): Promise<{
          query(sql: string): Promise<unknown>;
          end(): Promise<void>;
        }>;
      };
      const server = await mysql.createConnection(TEST_MYSQL_URL);
      await server.query(
        `CREATE DATABASE IF NOT EXISTS \`${MARIADB_DB}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
      );
      await server.end();
    },
    tables: [
      'DROP TABLE IF EXISTS poll_token, poll_user, knox_cache_log',
      `CREATE TABLE poll_user (id INT AUTO_INCREMENT PRIMARY KEY, username VARCHAR(150) NOT NULL, is_active TINYINT(1) NOT NULL DEFAULT 1) ENGINE=InnoDB`,
      `CREATE TABLE poll_token (digest VARCHAR(128) NOT NULL PRIMARY KEY, user_id INT NOT NULL, expiry DATETIME(3) NULL, retired_at DATETIME(3) NULL, abilities TEXT NULL, last_used_at DATETIME(3) NULL, FOREIGN KEY (user_id) REFERENCES poll_user (id) ON DELETE CASCADE) ENGINE=InnoDB`,
    ],
    other: async () => {
      const mysql = require('mysql2/promise') as {
        createConnection(url: string): Promise<{
          query(sql: string, params?: unknown[]): Promise<unknown>;
          end(): Promise<void>;
        }>;
      };
      return mysql.createConnection(MARIADB_URL);
    },
  },
  {
    name: 'sqlite',
    available: has('better-sqlite3'),
    options: () => ({
      type: 'better-sqlite3',
      database: path.join(dir, 'poll.sqlite'),
    }),
    tables: [
      'DROP TABLE IF EXISTS poll_token',
      'DROP TABLE IF EXISTS poll_user',
      'DROP TABLE IF EXISTS knox_cache_log',
      `CREATE TABLE poll_user (id INTEGER PRIMARY KEY AUTOINCREMENT, username TEXT NOT NULL, is_active INTEGER NOT NULL DEFAULT 1)`,
      `CREATE TABLE poll_token (digest TEXT NOT NULL PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES poll_user (id) ON DELETE CASCADE, expiry TEXT NULL, retired_at TEXT NULL, abilities TEXT NULL, last_used_at TEXT NULL)`,
    ],
    other: () => {
      const Database = require('better-sqlite3') as new (
        file: string,
        options: object,
      ) => {
        prepare(sql: string): { run(...p: unknown[]): unknown };
        pragma(p: string): unknown;
        close(): void;
      };
      const db = new Database(path.join(dir, 'poll.sqlite'), { timeout: 5000 });
      db.pragma('foreign_keys = ON');
      return Promise.resolve({
        query: (sql: string, params: unknown[] = []) =>
          Promise.resolve(db.prepare(sql).run(...params)),
        end: () => Promise.resolve(db.close()),
      });
    },
  },
];

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.each(dialects.filter((d) => d.available))(
  'cache log on $name',
  (dialect) => {
    let dataSource: DataSource;
    let reader: KnoxCacheLogReader;

    beforeAll(async () => {
      await dialect.prepare?.();
      dataSource = await new DataSource(dialect.options()).initialize();
      for (const sql of dialect.tables) {
        await dataSource.query(sql);
      }
      const runner = dataSource.createQueryRunner();
      expect(await hasKnoxCacheLog(runner, 'poll_token')).toBe(false);
      await installKnoxCacheLog(runner, 'poll_token');
      // Idempotent: boots and migrations may both run it.
      await installKnoxCacheLog(runner, 'poll_token');
      expect(await hasKnoxCacheLog(runner, 'poll_token')).toBe(true);
      await runner.release();
      reader = knoxCacheLogReader(dataSource, 'poll_token');
      await reader.open();
    });
    afterAll(async () => {
      await reader?.close();
      await dataSource?.destroy();
    });

    it('each writer appends what it changed; the reader returns it once', async () => {
      const other = await dialect.other();
      try {
        await other.query(
          `INSERT INTO poll_user (username) VALUES ('alice'), ('bob')`,
        );
        for (const [digest, user] of [
          ['d1', 1],
          ['d2', 1],
          ['d3', 1],
          ['d4', 2],
          ['d5', 2],
        ] as const) {
          await other.query(
            `INSERT INTO poll_token (digest, user_id, expiry) VALUES (?, ?, '2030-01-01 00:00:00.000')`,
            [digest, user],
          );
        }
        expect(await reader.read()).toEqual([]);
        // Touch-like updates are no news.
        await other.query(
          `UPDATE poll_token SET last_used_at = '2026-01-01 00:00:00.000', expiry = '2031-01-01 00:00:00.000' WHERE digest = 'd1'`,
        );
        expect(await reader.read()).toEqual([]);
        await other.query(
          `UPDATE poll_token SET expiry = '2000-01-01 00:00:00.000' WHERE digest = 'd1'`,
        );
        await other.query(
          `UPDATE poll_token SET abilities = 'posts:read' WHERE digest = 'd2'`,
        );
        expect(await reader.read()).toEqual(['t:d1', 't:d2']);
        await other.query(
          `DELETE FROM poll_token WHERE digest IN ('d1', 'd2')`,
        );
        expect((await reader.read()).sort()).toEqual(['t:d1', 't:d2']);
        await other.query(`UPDATE poll_user SET is_active = 0 WHERE id = 1`);
        expect(await reader.read()).toEqual(['u:1']);
        await other.query(`DELETE FROM poll_user WHERE id = 2`);
        const cascade = await reader.read();
        // The user's own row says it all (MySQL's cascades fire no trigger; SQLite's do).
        expect(cascade).toContain('u:2');
        expect(await reader.read()).toEqual([]);
      } finally {
        await other.end();
      }
    });

    if (dialect.name === 'mariadb') {
      it('a transaction that commits after later ones (a lower id) is still read', async () => {
        await dataSource.query(
          `INSERT INTO poll_token (digest, user_id) VALUES ('slow', 1), ('fast', 1)`,
        );
        await reader.read();
        const slow = await dialect.other();
        try {
          await slow.query('BEGIN');
          await slow.query(`DELETE FROM poll_token WHERE digest = 'slow'`);
          await dataSource.query(
            `DELETE FROM poll_token WHERE digest = 'fast'`,
          );
          expect(await reader.read()).toEqual(['t:fast']);
          expect(await reader.read()).toEqual([]);
          await slow.query('COMMIT');
          expect(await reader.read()).toEqual(['t:slow']);
          expect(await reader.read()).toEqual([]);
        } finally {
          await slow.end();
        }
      });
    }

    it('prunes rows older than the retention, keeps the recent ones', async () => {
      await dataSource.query(
        `INSERT INTO knox_cache_log (message, created_at) VALUES ('t:old', '2000-01-01 00:00:00.000')`,
      );
      await dataSource.query(
        `INSERT INTO knox_cache_log (message, created_at) VALUES ('t:recent', '2999-01-01 00:00:00.000')`,
      );
      await reader.read();
      expect(await reader.prune(60_000)).toBeGreaterThanOrEqual(1);
      const left = (await dataSource.query(
        `SELECT message FROM knox_cache_log WHERE message IN ('t:old', 't:recent')`,
      )) as { message: string }[];
      expect(left.map((r) => r.message)).toEqual(['t:recent']);
    });

    it('down removes the triggers and the log', async () => {
      const runner = dataSource.createQueryRunner();
      await reader.close();
      await dropKnoxCacheLog(runner, 'poll_token');
      expect(await hasKnoxCacheLog(runner, 'poll_token')).toBe(false);
      await dataSource.query(`DELETE FROM poll_token`);
      await runner.release();
    });
  },
);

const sqliteSuite = has('better-sqlite3') ? describe : describe.skip;

sqliteSuite('cache log on an in-memory SQLite database', () => {
  let dataSource: DataSource;

  beforeAll(async () => {
    dataSource = await new DataSource({
      type: 'better-sqlite3',
      database: ':memory:',
    }).initialize();
    for (const sql of dialects[1].tables) {
      await dataSource.query(sql);
    }
    const runner = dataSource.createQueryRunner();
    await installKnoxCacheLog(runner, 'poll_token');
    await runner.release();
  });
  afterAll(() => dataSource?.destroy());

  it('reads on TypeORM’s connection, never inside one of its transactions', async () => {
    const reader = knoxCacheLogReader(dataSource, 'poll_token');
    await reader.open();
    await dataSource.query(`INSERT INTO poll_user (username) VALUES ('alice')`);
    await dataSource.query(
      `INSERT INTO poll_token (digest, user_id) VALUES ('d1', 1), ('d2', 1)`,
    );
    await dataSource.query(`DELETE FROM poll_token WHERE digest = 'd1'`);
    expect(await reader.read()).toEqual(['t:d1']);
    const runner = dataSource.createQueryRunner();
    await runner.startTransaction();
    try {
      await runner.query(`DELETE FROM poll_token WHERE digest = 'd2'`);
      // Inside the open transaction the row may still roll back: the read is skipped.
      await expect(reader.read()).rejects.toThrow('read skipped');
    } finally {
      await runner.rollbackTransaction();
      await runner.release();
    }
    expect(await reader.read()).toEqual([]);
    await reader.close();
  });
});

/**
 * Issue 10: the shipped migration installs the cache's triggers (and its `down` removes them),
 * on a database of its own; each trigger notifies what the listener expects.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { DataSource } from 'typeorm';
import {
  installKnoxCacheTriggers,
  knoxCacheMigrations,
  knoxMigrations,
  knoxTokenEntity,
} from '../../../lib/index.js';
import { hasKnoxCacheTriggers } from '../../../lib/store/migrations/knox-cache-migrations.js';
import {
  hasKnoxCacheAbilitiesTrigger,
  installKnoxCacheAbilitiesTrigger,
} from '../../../lib/store/migrations/knox-cache-abilities.migration.js';
import { hasKnoxCacheLog } from '../../../lib/store/cache-log/knox-cache-log.migration.js';
import { TestUser } from '../../support/fixtures.js';
import { DATABASE_URL, EMBEDDED_DB } from '../../support/test-app.js';
import { TEST_DB } from '../../support/test-db.js';
import { until } from '../../support/cache.js';

// LISTEN/NOTIFY's triggers: PostgreSQL's own (its DDL, pg_trigger, a database of its own on the
// server); on the MariaDB and SQLite runs DATABASE_URL is no database of the run.
const suite = EMBEDDED_DB || TEST_DB !== 'postgres' ? describe.skip : describe;

suite('cache triggers migration', () => {
  const url = new URL(DATABASE_URL);
  const database = `${url.pathname.slice(1)}_cache_mig`;
  url.pathname = `/${database}`;
  let dataSource: DataSource;
  let listener: pg.Client;
  const received: string[] = [];

  beforeAll(async () => {
    const admin = new pg.Client({ connectionString: DATABASE_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    await admin.query(`CREATE DATABASE "${database}"`);
    await admin.end();
    dataSource = await new DataSource({
      type: 'postgres',
      url: url.toString(),
      entities: [
        TestUser,
        knoxTokenEntity(TestUser),
        knoxTokenEntity(TestUser, 'other_tokens'),
      ],
      synchronize: true,
      migrations: knoxCacheMigrations(),
    }).initialize();
    listener = new pg.Client({ connectionString: url.toString() });
    await listener.connect();
    listener.on('notification', (n) =>
      received.push(`${n.channel} ${n.payload}`),
    );
    await listener.query('LISTEN knox_cache');
    await listener.query('LISTEN other_channel');
  });
  afterAll(async () => {
    await listener?.end();
    await dataSource?.destroy();
  });

  const insertToken = async (table: string, digest: string, userId: number) =>
    dataSource.query(
      `INSERT INTO ${table} (digest, token_key, user_id, created, expiry) VALUES ($1::varchar, left($1::varchar, 15), $2, now(), now() + interval '1 hour')`,
      [digest, userId],
    );

  it('installs the triggers that notify deletions, updates that matter, and user changes', async () => {
    const runner = dataSource.createQueryRunner();
    expect(await hasKnoxCacheTriggers(runner, 'knox_authtoken')).toBe(false);
    await dataSource.runMigrations();
    // A second token table, with its own channel, installed the way boot does it.
    await installKnoxCacheTriggers(runner, {
      tokenTable: 'other_tokens',
      channel: 'other_channel',
    });
    await installKnoxCacheAbilitiesTrigger(runner, {
      tokenTable: 'other_tokens',
      channel: 'other_channel',
    });
    expect(await hasKnoxCacheTriggers(runner, 'knox_authtoken')).toBe(true);
    expect(await hasKnoxCacheTriggers(runner, 'other_tokens')).toBe(true);
    expect(await hasKnoxCacheAbilitiesTrigger(runner, 'knox_authtoken')).toBe(
      true,
    );

    const [{ id }] = (await dataSource.query(
      `INSERT INTO knox_test_user (username, password) VALUES ('alice', 'x') RETURNING id`,
    )) as { id: number }[];
    const digests = Array.from(
      { length: 100 },
      (_, i) => `${String(i).padStart(3, '0')}${'a'.repeat(125)}`,
    );
    for (const digest of digests) {
      await insertToken('knox_authtoken', digest, id);
    }
    await insertToken('other_tokens', 'b'.repeat(128), id);

    // lastUsedAt and an expiry moved later are no news; an expiry brought closer is.
    await dataSource.query(
      `UPDATE knox_authtoken SET last_used_at = now(), expiry = expiry + interval '1 hour' WHERE digest = $1`,
      [digests[0]],
    );
    await dataSource.query(
      `UPDATE knox_authtoken SET expiry = now() WHERE digest = $1`,
      [digests[1]],
    );
    await until(() => received.length >= 1, 'the update notification');
    expect(received).toEqual([`knox_cache t:${digests[1]}`]);
    received.length = 0;

    // Abilities changed (narrowed by an admin in SQL): news; set to what they were: none.
    await dataSource.query(
      `UPDATE knox_authtoken SET abilities = '{}' WHERE digest = $1`,
      [digests[2]],
    );
    await dataSource.query(
      `UPDATE knox_authtoken SET abilities = abilities WHERE digest = $1`,
      [digests[2]],
    );
    await until(() => received.length >= 1, 'the abilities notification');
    expect(received).toEqual([`knox_cache t:${digests[2]}`]);
    received.length = 0;

    // One DELETE of 100 rows: packed into few notifications, every digest in them.
    await dataSource.query(`DELETE FROM knox_authtoken WHERE digest <> $1`, [
      digests[0],
    ]);
    await until(
      () => received.join(',').split(/[:,]/).length > 99,
      'the delete notifications',
    );
    const notified = received.flatMap((r) =>
      r.replace('knox_cache t:', '').split(','),
    );
    expect(notified.sort()).toEqual(digests.slice(1).sort());
    expect(received.length).toBeLessThanOrEqual(2);
    received.length = 0;

    await dataSource.query(
      `UPDATE knox_test_user SET "isActive" = false WHERE id = $1`,
      [id],
    );
    await until(() => received.length >= 2, 'the user notifications');
    expect(received.sort()).toEqual(
      [`knox_cache u:${id}`, `other_channel u:${id}`].sort(),
    );
    received.length = 0;

    // Deleting the user cascades: the user and every token of it, in both tables.
    await dataSource.query(`DELETE FROM knox_test_user WHERE id = $1`, [id]);
    await until(() => received.length >= 4, 'the cascade notifications');
    expect(received.sort()).toEqual(
      [
        `knox_cache t:${digests[0]}`,
        `knox_cache u:${id}`,
        `other_channel t:${'b'.repeat(128)}`,
        `other_channel u:${id}`,
      ].sort(),
    );
    await runner.release();
  });

  it('down removes them, the last migration first', async () => {
    const runner = dataSource.createQueryRunner();
    expect(await hasKnoxCacheTriggers(runner, 'knox_authtoken')).toBe(true);
    expect(await hasKnoxCacheLog(runner, 'knox_authtoken')).toBe(true);
    await dataSource.undoLastMigration();
    expect(await hasKnoxCacheLog(runner, 'knox_authtoken')).toBe(false);
    expect(await hasKnoxCacheAbilitiesTrigger(runner, 'knox_authtoken')).toBe(
      true,
    );
    await dataSource.undoLastMigration();
    expect(await hasKnoxCacheAbilitiesTrigger(runner, 'knox_authtoken')).toBe(
      false,
    );
    expect(await hasKnoxCacheTriggers(runner, 'knox_authtoken')).toBe(true);
    await dataSource.undoLastMigration();
    expect(await hasKnoxCacheTriggers(runner, 'knox_authtoken')).toBe(false);
    expect(await hasKnoxCacheTriggers(runner, 'other_tokens')).toBe(true);
    await runner.release();
  });

  it('runs after knoxMigrations (which create the table) in one migrations list', async () => {
    const fresh = new URL(url.toString());
    fresh.pathname = `/${database}_fresh`;
    const admin = new pg.Client({ connectionString: DATABASE_URL });
    await admin.connect();
    await admin.query(
      `DROP DATABASE IF EXISTS "${database}_fresh" WITH (FORCE)`,
    );
    await admin.query(`CREATE DATABASE "${database}_fresh"`);
    await admin.end();
    const migrated = await new DataSource({
      type: 'postgres',
      url: fresh.toString(),
      entities: [TestUser, knoxTokenEntity(TestUser)],
      // Listed in the wrong order on purpose: TypeORM sorts them by the timestamp in their names.
      migrations: [...knoxCacheMigrations(), ...knoxMigrations(TestUser)],
    }).initialize();
    try {
      await migrated.query(
        `CREATE TABLE knox_test_user (id serial PRIMARY KEY, username varchar(150) UNIQUE NOT NULL, password varchar(200) NOT NULL, "isActive" boolean NOT NULL DEFAULT true)`,
      );
      const ran = await migrated.runMigrations();
      expect(ran.map((m) => m.name)).toEqual([
        'KnoxCreateTokenTable9000000000001',
        'KnoxCacheTriggers9000000000003',
        'KnoxTokenAbilities9000000000004',
        'KnoxCacheAbilities9000000000005',
        'KnoxTokenKind9000000000006',
        'KnoxTokenExpiryCap9000000000007',
        'KnoxCacheLog9000000000008',
      ]);
      const runner = migrated.createQueryRunner();
      expect(await hasKnoxCacheTriggers(runner, 'knox_authtoken')).toBe(true);
      expect(await hasKnoxCacheAbilitiesTrigger(runner, 'knox_authtoken')).toBe(
        true,
      );
      expect(await hasKnoxCacheLog(runner, 'knox_authtoken')).toBe(true);
      await runner.release();
    } finally {
      await migrated.destroy();
    }
  });
});

import { afterAll, expect, it } from '@jest/globals';
import { DataSource } from 'typeorm';
import {
  KNOX_MIGRATION_NAMES,
  knoxCacheMigrations,
  knoxMigrations,
  knoxTokenEntity,
} from '../../../lib/index.js';
import { TestUser } from '../../support/fixtures.js';
import { pendingSchemaChanges } from '../../support/schema.js';
import { describeOn, testConnectionOptions } from '../../support/test-db.js';

/*
 * The same migration classes, names and order on MySQL/MariaDB and SQLite as on PostgreSQL
 * (whose own SQL test/e2e/schema/migrations.e2e-spec.ts checks in detail), each emitting that
 * driver's DDL: after them TypeORM's schema diff of the token table is empty, and reverting
 * each one undoes it. A table of its own, so that the suite's other apps are not disturbed.
 */
describeOn(
  ['mariadb', 'sqlite'],
  'the shipped migrations on this driver',
  () => {
    const tableName = 'knox_mig_probe';
    const open: DataSource[] = [];
    afterAll(() => Promise.all(open.map((ds) => ds.destroy())));

    async function dataSource(): Promise<DataSource> {
      // The app's user table first, as its own migrations would make it.
      const users = new DataSource({
        ...(testConnectionOptions() as { type: 'mariadb' }),
        entities: [TestUser],
        synchronize: true,
      });
      await users.initialize();
      await users.destroy();
      const ds = new DataSource({
        ...(testConnectionOptions() as { type: 'mariadb' }),
        entities: [TestUser, knoxTokenEntity(TestUser, { tableName })],
        migrations: [
          ...knoxMigrations(TestUser, { tableName }),
          ...knoxCacheMigrations({ tableName }),
        ],
        migrationsTableName: `${tableName}_migrations`,
      });
      await ds.initialize();
      open.push(ds);
      return ds;
    }

    it('runs in the shipped order, leaves no schema diff, and reverts one by one', async () => {
      const ds = await dataSource();
      const ran = await ds.runMigrations({ transaction: 'each' });
      expect(ran.map((m) => m.name)).toEqual([
        KNOX_MIGRATION_NAMES.createTokenTable,
        KNOX_MIGRATION_NAMES.cacheTriggers,
        KNOX_MIGRATION_NAMES.tokenAbilities,
        'KnoxCacheAbilities9000000000005',
        KNOX_MIGRATION_NAMES.tokenKind,
        KNOX_MIGRATION_NAMES.tokenExpiryCap,
        // The cache's log for the 'poll' bus (knoxCacheMigrations' last).
        'KnoxCacheLog9000000000008',
      ]);
      expect(await pendingSchemaChanges(ds, tableName)).toEqual([]);
      const columns = async () =>
        (await ds.createQueryRunner().getTable(tableName))?.columns.map(
          (c) => c.name,
        );
      expect(await columns()).toContain('max_expiry');
      const hasTable = (name: string) => ds.createQueryRunner().hasTable(name);
      expect(await hasTable('knox_cache_log')).toBe(true);
      await ds.undoLastMigration({ transaction: 'each' }); // the cache log
      expect(await hasTable('knox_cache_log')).toBe(false);
      await ds.undoLastMigration({ transaction: 'each' });
      expect(await columns()).not.toContain('max_expiry');
      await ds.undoLastMigration({ transaction: 'each' });
      expect(await columns()).not.toContain('kind');
      await ds.undoLastMigration({ transaction: 'each' }); // cache abilities: a no-op here
      await ds.undoLastMigration({ transaction: 'each' });
      expect(await columns()).not.toContain('abilities');
      await ds.undoLastMigration({ transaction: 'each' }); // cache triggers: a no-op here
      await ds.undoLastMigration({ transaction: 'each' });
      expect(await columns()).toBeUndefined();
      const recorded: unknown[] = await ds.query(
        `SELECT * FROM ${tableName}_migrations`,
      );
      expect(recorded).toEqual([]);
    });
  },
);

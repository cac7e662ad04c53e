import 'reflect-metadata';
import { afterEach, describe, expect, it } from '@jest/globals';
import { type DataSource } from 'typeorm';
import {
  DjangoUser,
  KNOX_MIGRATION_NAMES,
  knoxMigrations,
  knoxTokenEntity,
} from '../../../lib/index.js';
import {
  loadDjangoFixture,
  openDataSource,
  pendingSchemaChanges,
  readDjangoFixture,
  tableRows,
  tableShape,
  type DjangoDatabase,
} from '../../support/schema.js';

const DJANGO_COLUMNS = ['digest', 'created', 'user_id', 'expiry', 'token_key'];

describe('Django takeover migration on the django-rest-knox 5.0.2 fixture', () => {
  let db: DjangoDatabase | undefined;
  const open: DataSource[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((ds) => ds.destroy()));
    await db?.drop();
    db = undefined;
  });

  async function open_(extra: Record<string, unknown> = {}) {
    const ds = await openDataSource({
      url: db!.url,
      schema: db!.schema,
      entities: [DjangoUser, knoxTokenEntity(DjangoUser, { schema: 'django' })],
      migrations: knoxMigrations(DjangoUser, { schema: 'django' }),
      ...extra,
    });
    open.push(ds);
    return ds;
  }

  const tokenRows = (ds: DataSource) =>
    tableRows(ds, `"${db!.schema}".knox_authtoken`, 'digest');
  const userRows = (ds: DataSource) =>
    tableRows(ds, `"${db!.schema}".auth_user`, 'id');

  it("adds the columns, keeps Django's schema and rows, converges, and reverts to schema.sql", async () => {
    db = await loadDjangoFixture();
    const ds = await open_();
    const before = await tableShape(ds, db.schema, 'knox_authtoken');
    const usersBefore = await tableShape(ds, db.schema, 'auth_user');
    const rowsBefore = await tokenRows(ds);
    const userRowsBefore = await userRows(ds);
    expect(rowsBefore).toHaveLength(
      readDjangoFixture('data.sql').match(
        /^INSERT INTO public\.knox_authtoken /gm,
      )!.length,
    );
    expect(before.columns.map((c) => c.column_name)).toEqual(DJANGO_COLUMNS);
    // Before the takeover, TypeORM wants the columns; nothing of Django's would be dropped.
    const wanted = await pendingSchemaChanges(ds);
    expect(wanted.join('\n')).toContain('ADD "id" uuid NOT NULL');
    expect(wanted.join('\n')).not.toMatch(/DROP (INDEX|CONSTRAINT)/);

    const ran = await ds.runMigrations();
    expect(ran.map((m) => m.name)).toEqual([
      KNOX_MIGRATION_NAMES.djangoTakeover,
      KNOX_MIGRATION_NAMES.tokenAbilities,
      KNOX_MIGRATION_NAMES.tokenExpiryCap,
    ]);

    // TypeORM sees nothing to change: not Django's FK, not its four indexes, not auth_user.
    expect(await pendingSchemaChanges(ds)).toEqual([]);
    expect((await ds.driver.createSchemaBuilder().log()).upQueries).toEqual([]);

    const after = await tableShape(ds, db.schema, 'knox_authtoken');
    expect(after.columns.map((c) => c.column_name)).toEqual([
      ...DJANGO_COLUMNS,
      'id',
      'ttl_ms',
      'name',
      'user_agent',
      'ip',
      'last_used_at',
      'retired_at',
      'abilities',
      'last_used_ip',
      'max_expiry',
    ]);
    expect(after.columns.slice(0, 5)).toEqual(before.columns);
    // Django's rows keep every ability.
    expect(
      await ds.query(
        `SELECT count(*)::int AS n FROM "${db.schema}".knox_authtoken WHERE abilities IS NOT NULL OR last_used_ip IS NOT NULL OR max_expiry IS NOT NULL`,
      ),
    ).toEqual([{ n: 0 }]);
    // Django's constraints and indexes are all still there, unchanged; two were added.
    expect(after.constraints).toEqual(
      expect.arrayContaining(before.constraints),
    );
    expect(after.constraints.map((c) => c.conname)).toEqual(
      [
        ...before.constraints.map((c) => c.conname),
        'knox_authtoken_id_key',
      ].sort(),
    );
    expect(after.indexes).toEqual(expect.arrayContaining(before.indexes));
    expect(after.indexes.map((i) => i.indexname)).toEqual(
      [
        ...before.indexes.map((i) => i.indexname),
        'knox_authtoken_expiry_idx',
        'knox_authtoken_id_key',
      ].sort(),
    );
    expect(await tableShape(ds, db.schema, 'auth_user')).toEqual(usersBefore);
    expect(await userRows(ds)).toEqual(userRowsBefore);

    // Every existing row got its own id; Django's columns of every row are untouched.
    const rows = (await tokenRows(ds)) as Record<string, unknown>[];
    const ids = rows.map((r) => r.id);
    expect(ids.every((id) => typeof id === 'string')).toBe(true);
    expect(new Set(ids).size).toBe(rows.length);
    expect(
      rows.map((r) => Object.fromEntries(DJANGO_COLUMNS.map((c) => [c, r[c]]))),
    ).toEqual(rowsBefore);

    // Django keeps inserting rows its way (no id): the default gives them one.
    await ds.query(
      `INSERT INTO "${db.schema}".knox_authtoken (digest, created, user_id, expiry, token_key)
       VALUES ($1, now(), 1, NULL, 'djangoinsert000')`,
      ['f'.repeat(128)],
    );
    const [inserted] = await ds.query(
      `SELECT id FROM "${db.schema}".knox_authtoken WHERE digest = $1`,
      ['f'.repeat(128)],
    );
    expect(inserted.id).toMatch(/^[0-9a-f-]{36}$/);
    await ds.query(
      `DELETE FROM "${db.schema}".knox_authtoken WHERE digest = $1`,
      ['f'.repeat(128)],
    );

    // An app booting with synchronize: true on the taken-over table changes nothing.
    const synced = await open_({ synchronize: true });
    expect(await tableShape(synced, db.schema, 'knox_authtoken')).toEqual(
      after,
    );
    expect(await tableShape(synced, db.schema, 'auth_user')).toEqual(
      usersBefore,
    );

    await ds.undoLastMigration();
    // Reverting the expiry-cap migration drops its one column.
    const abilitiesToo = await tableShape(ds, db.schema, 'knox_authtoken');
    expect(abilitiesToo.columns).toEqual(after.columns.slice(0, -1));
    await ds.undoLastMigration();
    // Reverting the abilities migration too leaves the takeover's table as it was.
    const takeoverOnly = await tableShape(ds, db.schema, 'knox_authtoken');
    expect(takeoverOnly.columns).toEqual(after.columns.slice(0, -3));
    expect(takeoverOnly.constraints).toEqual(after.constraints);
    expect(takeoverOnly.indexes).toEqual(after.indexes);
    await ds.undoLastMigration();
    expect(await tableShape(ds, db.schema, 'knox_authtoken')).toEqual(before);
    expect(await tokenRows(ds)).toEqual(rowsBefore);
    expect(await tableShape(ds, db.schema, 'auth_user')).toEqual(usersBefore);
    expect(await userRows(ds)).toEqual(userRowsBefore);
  });

  it("nestjs-knox first: creates Django's own table, then the same takeover", async () => {
    db = await loadDjangoFixture();
    const ds = await open_();
    const django = await tableShape(ds, db.schema, 'knox_authtoken');
    await ds.runMigrations();
    const djangoFirst = await tableShape(ds, db.schema, 'knox_authtoken');
    await ds.undoLastMigration();
    await ds.undoLastMigration();
    await ds.undoLastMigration();
    await ds.query(`DROP TABLE "${db.schema}".knox_authtoken`);

    const ran = await ds.runMigrations();
    expect(ran.map((m) => m.name)).toEqual([
      KNOX_MIGRATION_NAMES.djangoTakeover,
      KNOX_MIGRATION_NAMES.tokenAbilities,
      KNOX_MIGRATION_NAMES.tokenExpiryCap,
    ]);
    // Exactly the table Django's migrations 0001–0009 plus the takeover make.
    expect(await tableShape(ds, db.schema, 'knox_authtoken')).toEqual(
      djangoFirst,
    );
    expect(await pendingSchemaChanges(ds)).toEqual([]);
    // Reverting leaves Django's table (then owned by `manage.py migrate knox --fake`).
    await ds.undoLastMigration();
    await ds.undoLastMigration();
    await ds.undoLastMigration();
    expect(await tableShape(ds, db.schema, 'knox_authtoken')).toEqual(django);
  });
});

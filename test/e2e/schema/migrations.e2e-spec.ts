import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from '@jest/globals';
import { Column, Entity, PrimaryColumn, type DataSource } from 'typeorm';
import {
  KNOX_MIGRATION_NAMES,
  knoxMigrations,
  knoxTokenEntity,
} from '../../../lib/index.js';
import {
  createTokenTableSql,
  djangoTakeoverSql,
} from '../../../lib/store/migrations/knox-migration-sql.js';
import { TestUser } from '../../support/fixtures.js';
import { tokenAbilitiesSql } from '../../../lib/store/migrations/knox-token-abilities.migration.js';
import {
  createTestSchema,
  openDataSource,
  pendingSchemaChanges,
  tableShape,
  type TestSchema,
} from '../../support/schema.js';

/** A user entity keyed by uuid, in a table of its own. */
@Entity('knox_uuid_user')
class UuidUser {
  @PrimaryColumn('uuid')
  id: string;

  @Column({ type: 'varchar', length: 150 })
  username: string;
}

/** Every table, column, constraint and index of a schema. */
async function schemaShape(dataSource: DataSource, schema: string) {
  const tables: { table_name: string }[] = await dataSource.query(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name`,
    [schema],
  );
  const shapes: Record<string, unknown> = {};
  for (const { table_name } of tables) {
    shapes[table_name] = await tableShape(dataSource, schema, table_name);
  }
  return shapes;
}

describe('shipped migrations converge and revert (schema: knox)', () => {
  let schema: TestSchema | undefined;
  const schemas: TestSchema[] = [];
  const open: DataSource[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((ds) => ds.destroy()));
    await Promise.all(schemas.splice(0).map((s) => s.drop()));
    schema = undefined;
  });

  async function dataSourceFor(
    userEntity: typeof TestUser | typeof UuidUser,
    tableName: string | undefined,
    extra: Record<string, unknown> = {},
  ) {
    schema = await createTestSchema();
    schemas.push(schema);
    // The app's own table first, as its own migrations would make it.
    const users = await openDataSource({
      schema: schema.name,
      entities: [userEntity],
      synchronize: true,
    });
    await users.destroy();
    const ds = await openDataSource({
      schema: schema.name,
      entities: [userEntity, knoxTokenEntity(userEntity, { tableName })],
      migrations: knoxMigrations(userEntity, { tableName }),
      ...extra,
    });
    open.push(ds);
    return ds;
  }

  it.each([
    ['knox_authtoken', TestUser, undefined],
    ['app_tokens', TestUser, 'app_tokens'],
    ['knox_authtoken (uuid user key)', UuidUser, undefined],
  ] as const)(
    '%s: migration:run, then the schema diff is empty; migration:revert restores the schema',
    async (_label, userEntity, tableName) => {
      const ds = await dataSourceFor(userEntity, tableName);
      const table = tableName ?? 'knox_authtoken';
      const before = await schemaShape(ds, schema!.name);
      expect(await pendingSchemaChanges(ds, table)).not.toEqual([]);

      const ran = await ds.runMigrations();
      expect(ran.map((m) => m.name)).toEqual([
        KNOX_MIGRATION_NAMES.createTokenTable,
        KNOX_MIGRATION_NAMES.tokenAbilities,
        KNOX_MIGRATION_NAMES.tokenExpiryCap,
      ]);
      expect(await pendingSchemaChanges(ds, table)).toEqual([]);
      // The whole diff, user table included, is empty: nothing of the app's is touched either.
      expect((await ds.driver.createSchemaBuilder().log()).upQueries).toEqual(
        [],
      );
      const shape = await tableShape(ds, schema!.name, table);
      expect(shape.columns.map((c) => c.column_name)).toEqual([
        'digest',
        'token_key',
        'id',
        'user_id',
        'created',
        'expiry',
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
      expect(
        shape.columns.find((c) => c.column_name === 'abilities'),
      ).toMatchObject({ data_type: 'ARRAY', is_nullable: 'YES' });
      expect(
        shape.columns.find((c) => c.column_name === 'user_id')!.data_type,
      ).toBe(userEntity === UuidUser ? 'uuid' : 'integer');
      expect(shape.constraints).toContainEqual(
        expect.objectContaining({
          conname: `${table}_user_id_fkey`,
          definition: expect.stringContaining('ON DELETE CASCADE'),
        }),
      );

      await ds.undoLastMigration();
      await ds.undoLastMigration();
      await ds.undoLastMigration();
      const after = await schemaShape(ds, schema!.name);
      delete (after as Record<string, unknown>).migrations;
      delete (before as Record<string, unknown>).migrations;
      expect(after).toEqual(before);
      expect(
        await ds.query(
          `SELECT count(*)::int AS n FROM "${schema!.name}".migrations`,
        ),
      ).toEqual([{ n: 0 }]);
    },
  );

  it('synchronize: true creates the same table, and its schema diff is empty', async () => {
    const ds = await dataSourceFor(TestUser, undefined, { synchronize: true });
    expect(await pendingSchemaChanges(ds)).toEqual([]);
    expect(
      await ds.query('SELECT to_regclass($1) AS t', [
        `"${schema!.name}".knox_authtoken`,
      ]),
    ).not.toEqual([{ t: null }]);
    const synchronized = await tableShape(ds, schema!.name, 'knox_authtoken');

    // Same shape as the migration makes (constraint and index names included).
    const migrated = await dataSourceFor(TestUser, undefined);
    await migrated.runMigrations();
    const fromMigration = await tableShape(
      migrated,
      schema!.name,
      'knox_authtoken',
    );
    const comparable = (s: typeof synchronized) => ({
      columns: s.columns
        .map(({ ordinal_position: _o, ...c }) => c)
        .sort((a, b) =>
          String(a.column_name).localeCompare(String(b.column_name)),
        ),
      constraints: s.constraints.map((c) => ({
        ...c,
        definition: String(c.definition).replace(/knox_schema_\w+/g, 'S'),
      })),
      indexes: s.indexes.map((i) => ({
        ...i,
        indexdef: String(i.indexdef).replace(/knox_schema_\w+/g, 'S'),
      })),
    });
    expect(comparable(fromMigration)).toEqual(comparable(synchronized));
  });

  it("TypeORM's own migration:generate output converges too, and its down runs", async () => {
    const ds = await dataSourceFor(TestUser, undefined);
    const before = await schemaShape(ds, schema!.name);
    // What `typeorm migration:generate` would write, run as its migration would run it.
    const generated = await ds.driver.createSchemaBuilder().log();
    expect(generated.upQueries.length).toBeGreaterThan(0);
    const runner = ds.createQueryRunner();
    try {
      for (const q of generated.upQueries) {
        await runner.query(q.query, q.parameters);
      }
      expect((await ds.driver.createSchemaBuilder().log()).upQueries).toEqual(
        [],
      );
      for (const q of [...generated.downQueries].reverse()) {
        await runner.query(q.query, q.parameters);
      }
    } finally {
      await runner.release();
    }
    expect(await schemaShape(ds, schema!.name)).toEqual(before);
  });

  it('KnoxTokenAbilities9000000000004 on a table of the first migration: rows kept with abilities null, diff empty, reverts exactly', async () => {
    const ds = await dataSourceFor(TestUser, undefined);
    const [create] = knoxMigrations(TestUser);
    // A deployment that ran only the first migration, with a token in it.
    const first = await openDataSource({
      schema: schema!.name,
      entities: [TestUser],
      migrations: [create],
    });
    open.push(first);
    await first.runMigrations();
    await first.query(
      `INSERT INTO "${schema!.name}".knox_test_user (username, password) VALUES ('alice', 'pw')`,
    );
    await first.query(
      `INSERT INTO "${schema!.name}".knox_authtoken (digest, token_key, user_id, created, last_used_at)
       VALUES ($1, 'abcdefabcdefabc', 1, now(), now())`,
      ['a'.repeat(128)],
    );
    const before = await tableShape(ds, schema!.name, 'knox_authtoken');
    const rowsBefore = await ds.query(
      `SELECT * FROM "${schema!.name}".knox_authtoken`,
    );
    expect(await pendingSchemaChanges(ds)).toEqual([
      expect.stringContaining('ADD "abilities" text array'),
      expect.stringContaining('ADD "last_used_ip" character varying(45)'),
      expect.stringContaining('ADD "max_expiry" TIMESTAMP WITH TIME ZONE'),
    ]);

    const ran = await ds.runMigrations();
    expect(ran.map((m) => m.name)).toEqual([
      KNOX_MIGRATION_NAMES.tokenAbilities,
      KNOX_MIGRATION_NAMES.tokenExpiryCap,
    ]);
    expect(await pendingSchemaChanges(ds)).toEqual([]);
    const [row] = await ds.query(
      `SELECT * FROM "${schema!.name}".knox_authtoken`,
    );
    expect(row).toEqual({
      ...rowsBefore[0],
      abilities: null,
      last_used_ip: null,
      max_expiry: null,
    });

    await ds.undoLastMigration();
    await ds.undoLastMigration();
    expect(await tableShape(ds, schema!.name, 'knox_authtoken')).toEqual(
      before,
    );
    expect(
      await ds.query(`SELECT * FROM "${schema!.name}".knox_authtoken`),
    ).toEqual(rowsBefore);
  });

  it('KnoxTokenExpiryCap9000000000007 on a table of the earlier migrations: rows kept with max_expiry null (no cap), diff empty, reverts exactly', async () => {
    const ds = await dataSourceFor(TestUser, undefined);
    const [create, abilities] = knoxMigrations(TestUser);
    // A deployment that ran the migrations before this one, with a token in it.
    const first = await openDataSource({
      schema: schema!.name,
      entities: [TestUser],
      migrations: [create, abilities],
    });
    open.push(first);
    await first.runMigrations();
    await first.query(
      `INSERT INTO "${schema!.name}".knox_test_user (username, password) VALUES ('alice', 'pw')`,
    );
    await first.query(
      `INSERT INTO "${schema!.name}".knox_authtoken (digest, token_key, user_id, created, last_used_at)
       VALUES ($1, 'abcdefabcdefabc', 1, now(), now())`,
      ['a'.repeat(128)],
    );
    const before = await tableShape(ds, schema!.name, 'knox_authtoken');
    const rowsBefore = await ds.query(
      `SELECT * FROM "${schema!.name}".knox_authtoken`,
    );
    expect(await pendingSchemaChanges(ds)).toEqual([
      expect.stringContaining('ADD "max_expiry" TIMESTAMP WITH TIME ZONE'),
    ]);

    const ran = await ds.runMigrations();
    expect(ran.map((m) => m.name)).toEqual([
      KNOX_MIGRATION_NAMES.tokenExpiryCap,
    ]);
    expect(await pendingSchemaChanges(ds)).toEqual([]);
    const [row] = await ds.query(
      `SELECT * FROM "${schema!.name}".knox_authtoken`,
    );
    expect(row).toEqual({
      ...rowsBefore[0],
      max_expiry: null,
    });

    await ds.undoLastMigration();
    expect(await tableShape(ds, schema!.name, 'knox_authtoken')).toEqual(
      before,
    );
    expect(
      await ds.query(`SELECT * FROM "${schema!.name}".knox_authtoken`),
    ).toEqual(rowsBefore);
  });

  it('knoxMigrations refuses a bad call with a message', () => {
    expect(() => knoxMigrations(undefined as never)).toThrow(
      'knoxMigrations: pass your TypeORM user entity class, e.g. knoxMigrations(User).',
    );
    expect(() =>
      knoxMigrations(TestUser, { schema: 'rails' as never }),
    ).toThrow(
      "knoxMigrations: `schema` must be 'knox' or 'django'; got rails.",
    );
  });
});

describe('the SQL in docs/database.md', () => {
  const page = readFileSync(
    join(
      dirname(fileURLToPath(import.meta.url)),
      '..',
      '..',
      '..',
      'docs',
      'database.md',
    ),
    'utf8',
  );
  const blocks = [...page.matchAll(/```sql\n([\s\S]*?)```/g)].map((m) => m[1]);

  it('is what the shipped migrations run', () => {
    const create = createTokenTableSql(
      { schema: undefined, table: 'knox_authtoken' },
      {
        path: { schema: undefined, table: 'users' },
        column: 'id',
        type: 'integer',
      },
    );
    expect(blocks[0]).toBe(`${create.up.join(';\n')};\n`);
    const takeover = djangoTakeoverSql({
      schema: undefined,
      table: 'knox_authtoken',
    });
    const [up, down] = blocks[1].split('-- down:\n');
    expect(up).toBe(`${takeover.up.join(';\n')};\n`);
    // The down statements, reflowed on the page: compare without layout.
    const flat = (sql: string) => sql.replace(/\s+/g, ' ').trim();
    expect(flat(down)).toBe(flat(`${takeover.down.join(';\n')};`));
    const abilities = tokenAbilitiesSql({
      schema: undefined,
      table: 'knox_authtoken',
    });
    expect(blocks[2]).toBe(
      `${abilities.up.join(';\n')};\n-- down:\n${abilities.down.join(';\n')};\n`,
    );
  });
});

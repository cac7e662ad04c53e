import 'reflect-metadata';
import { afterEach, describe, expect, it } from '@jest/globals';
import type { INestApplication, Type } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import supertest from 'supertest';
import { DataSource, type DataSourceOptions } from 'typeorm';
import {
  DjangoUser,
  KnoxModule,
  KnoxSchemaError,
  knoxMigrations,
  knoxTokenEntity,
  type KnoxModuleExtras,
} from '../../../lib/index.js';
import { TestUser } from '../../support/fixtures.js';
import { DATABASE_URL, QueryRecorder } from '../../support/test-app.js';
import {
  createTestSchema,
  loadDjangoFixture,
  openDataSource,
  readDjangoFixture,
  type DjangoDatabase,
  type TestSchema,
} from '../../support/schema.js';

describe('boot-time check of the token table', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      await cleanup();
    }
  });

  async function freshSchema(): Promise<TestSchema> {
    const schema = await createTestSchema();
    cleanups.push(() => schema.drop());
    // The app's user table, as its own migrations would make it.
    const users = await openDataSource({
      schema: schema.name,
      entities: [TestUser],
      synchronize: true,
    });
    await users.destroy();
    return schema;
  }

  /** Boots an app like a user's: TypeOrmModule with the given data source options, KnoxModule. */
  async function boot(
    dataSource: Partial<DataSourceOptions> & { schema: string; url?: string },
    extras: Partial<KnoxModuleExtras> & { userEntity?: Type<unknown> } = {},
  ): Promise<INestApplication> {
    const userEntity = extras.userEntity ?? TestUser;
    const opened: Promise<DataSource>[] = [];
    const moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRootAsync({
          useFactory: () =>
            ({
              type: 'postgres',
              url: DATABASE_URL,
              // Listed by hand: autoLoadEntities would also bring the entities other apps of
              // this file registered (they accumulate per data source in @nestjs/typeorm).
              entities: [
                userEntity,
                knoxTokenEntity(userEntity, {
                  tableName: extras.tableName,
                  schema: extras.schema,
                }),
              ],
              synchronize: false,
              retryAttempts: 0,
              ...dataSource,
            }) as unknown as DataSourceOptions,
          dataSourceFactory: (options) => {
            const initializing = new DataSource(options!).initialize();
            opened.push(initializing);
            return initializing;
          },
        }),
        KnoxModule.forRoot({
          userEntity,
          ...extras,
          validateUser: async (username: string, password: string) => {
            const ds = await opened[0];
            const user = await ds
              .getRepository(TestUser)
              .findOneBy({ username });
            return user && user.password === password ? user : null;
          },
          loginThrottle: false,
        }),
      ],
    }).compile();
    const app = moduleRef.createNestApplication();
    app.useLogger(false);
    const closeAll = () =>
      Promise.all(
        opened.map((p) =>
          p.then(
            (ds) => (ds.isInitialized ? ds.destroy() : undefined),
            () => undefined,
          ),
        ),
      );
    try {
      await app.init();
    } catch (error) {
      await closeAll();
      throw error;
    }
    cleanups.push(() => app.close());
    return app;
  }

  async function bootError(
    ...args: Parameters<typeof boot>
  ): Promise<KnoxSchemaError> {
    const error = await boot(...args).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(KnoxSchemaError);
    return error as KnoxSchemaError;
  }

  it('no table, no synchronize, no migrationsRun: boot fails saying which migration to run', async () => {
    const schema = await freshSchema();
    const error = await bootError({ schema: schema.name });
    expect(error.message).toBe(
      `KnoxModule: table ${schema.name}.knox_authtoken does not exist: run the migration KnoxCreateTokenTable9000000000001 (knoxMigrations(TestUser)), or set \`synchronize: true\` on the data source (docs/database.md).`,
    );
  });

  it('no table with another tableName: the message shows the call to make', async () => {
    const schema = await freshSchema();
    const error = await bootError(
      { schema: schema.name },
      { tableName: 'app_tokens' },
    );
    expect(error.message).toBe(
      `KnoxModule: table ${schema.name}.app_tokens does not exist: run the migration KnoxCreateTokenTable9000000000001 (knoxMigrations(TestUser, { tableName: 'app_tokens' })), or set \`synchronize: true\` on the data source (docs/database.md).`,
    );
  });

  it('migrationsRun with the shipped migrations: boots, and login works on the migrated table', async () => {
    const schema = await freshSchema();
    const recorder = new QueryRecorder();
    const app = await boot({
      schema: schema.name,
      migrations: knoxMigrations(TestUser),
      migrationsRun: true,
      logging: ['query'],
      logger: recorder,
    });
    // The check is one query.
    expect(
      recorder.statements.filter(
        (sql) =>
          /information_schema\.columns/.test(sql) && /is_nullable/.test(sql),
      ),
    ).toHaveLength(1);
    const ds = app.get(DataSource);
    await ds.getRepository(TestUser).save({
      username: 'alice',
      password: 'pw',
      isActive: true,
    });
    const res = await supertest(app.getHttpServer())
      .post('/auth/login')
      .send({ username: 'alice', password: 'pw' });
    expect(res.status).toBe(200);
    const [row] = await ds.query(
      `SELECT id, user_id FROM "${schema.name}".knox_authtoken`,
    );
    expect(row.id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('migrationsRun or synchronize set: a table not there yet is not an error', async () => {
    const schema = await freshSchema();
    // Nothing creates it here (no migrations listed), yet the check does not stand in the way.
    await expect(
      boot({ schema: schema.name, migrationsRun: true, migrations: [] }),
    ).resolves.toBeDefined();
  });

  it('columns missing and mismatched: one message naming them all', async () => {
    const schema = await freshSchema();
    const ds = await openDataSource({
      schema: schema.name,
      entities: [TestUser],
      migrations: knoxMigrations(TestUser),
    });
    await ds.runMigrations();
    await ds.query(
      `ALTER TABLE "${schema.name}".knox_authtoken
         DROP COLUMN retired_at, DROP COLUMN last_used_at,
         ALTER COLUMN ip TYPE varchar(15),
         ALTER COLUMN name SET NOT NULL,
         ALTER COLUMN id DROP DEFAULT,
         ALTER COLUMN id TYPE text`,
    );
    await ds.destroy();
    const error = await bootError({ schema: schema.name });
    expect(error.message).toBe(
      `KnoxModule: table ${schema.name}.knox_authtoken lacks columns last_used_at, retired_at and has mismatched columns id (expected uuid NOT NULL, found text NOT NULL), name (expected character varying(200) NULL, found character varying(200) NOT NULL), ip (expected character varying(45) NULL, found character varying(15) NULL): run the pending migrations of knoxMigrations(TestUser) (docs/database.md).`,
    );
  });

  it('only mismatched columns: says to alter them', async () => {
    const schema = await freshSchema();
    const ds = await openDataSource({
      schema: schema.name,
      entities: [TestUser],
      migrations: knoxMigrations(TestUser),
    });
    await ds.runMigrations();
    await ds.query(
      `ALTER TABLE "${schema.name}".knox_authtoken ALTER COLUMN ttl_ms TYPE integer`,
    );
    await ds.destroy();
    const error = await bootError({ schema: schema.name });
    expect(error.message).toBe(
      `KnoxModule: table ${schema.name}.knox_authtoken has mismatched columns ttl_ms (expected bigint NULL, found integer NULL): alter those columns to the types expected (docs/database.md).`,
    );
  });

  it('a table without the abilities migration: names its columns and says to run the pending migrations', async () => {
    const schema = await freshSchema();
    const [create] = knoxMigrations(TestUser);
    const ds = await openDataSource({
      schema: schema.name,
      entities: [TestUser],
      migrations: [create],
    });
    await ds.runMigrations();
    await ds.destroy();
    const error = await bootError({ schema: schema.name });
    expect(error.message).toBe(
      `KnoxModule: table ${schema.name}.knox_authtoken lacks columns abilities, last_used_ip, max_expiry: run the pending migrations of knoxMigrations(TestUser) (docs/database.md).`,
    );
  });

  it('an abilities column of another type is a mismatch (text[] expected)', async () => {
    const schema = await freshSchema();
    const ds = await openDataSource({
      schema: schema.name,
      entities: [TestUser],
      migrations: knoxMigrations(TestUser),
    });
    await ds.runMigrations();
    await ds.query(
      `ALTER TABLE "${schema.name}".knox_authtoken
         ALTER COLUMN abilities TYPE varchar(50)[],
         ALTER COLUMN last_used_ip TYPE jsonb USING to_jsonb(last_used_ip)`,
    );
    await ds.destroy();
    const error = await bootError({ schema: schema.name });
    expect(error.message).toBe(
      `KnoxModule: table ${schema.name}.knox_authtoken has mismatched columns abilities (expected text[] NULL, found varchar[] NULL), last_used_ip (expected character varying(45) NULL, found jsonb NULL): alter those columns to the types expected (docs/database.md).`,
    );
  });

  describe('a django-rest-knox table not taken over yet', () => {
    let db: DjangoDatabase;
    const djangoMissing =
      'lacks columns id, ttl_ms, name, user_agent, ip, last_used_at, retired_at, abilities, last_used_ip, max_expiry';

    it("with schema: 'django': names the takeover migration", async () => {
      db = await loadDjangoFixture();
      cleanups.push(() => db.drop());
      const error = await bootError(
        { url: db.url, schema: db.schema },
        { userEntity: DjangoUser, schema: 'django' },
      );
      expect(error.message).toBe(
        `KnoxModule: table ${db.schema}.knox_authtoken ${djangoMissing}: run the migration KnoxDjangoTakeover9000000000002 (knoxMigrations(DjangoUser, { schema: 'django' })) (docs/database.md).`,
      );
    });

    it("without it: also says to set schema: 'django'; after the takeover it boots", async () => {
      db = await loadDjangoFixture();
      cleanups.push(() => db.drop());
      const error = await bootError(
        { url: db.url, schema: db.schema },
        { userEntity: DjangoUser },
      );
      expect(error.message).toBe(
        `KnoxModule: table ${db.schema}.knox_authtoken ${djangoMissing}: run the migration KnoxDjangoTakeover9000000000002 (knoxMigrations(DjangoUser, { schema: 'django' })) and set \`schema: 'django'\` in KnoxModule's options (docs/database.md).`,
      );

      const app = await boot(
        {
          url: db.url,
          schema: db.schema,
          migrations: knoxMigrations(DjangoUser, { schema: 'django' }),
          migrationsRun: true,
        },
        { userEntity: DjangoUser, schema: 'django' },
      );

      // Every token django-rest-knox issued works as Django answered it; a live one lists the
      // user's Django-made rows, each with the id the takeover gave it.
      const { tokens } = JSON.parse(readDjangoFixture('tokens.json')) as {
        tokens: {
          label: string;
          token: string;
          user_id: number;
          expected_status: number;
        }[];
      };
      const http = supertest(app.getHttpServer());
      const rows: { id: string; user_id: number; expiry: Date | null }[] =
        await app
          .get(DataSource)
          .query(
            `SELECT id, user_id, expiry FROM "${db.schema}".knox_authtoken`,
          );
      const answers = [];
      for (const entry of tokens) {
        const res = await http
          .get('/auth/tokens')
          .set('Authorization', `Token ${entry.token}`);
        answers.push([entry.label, res.status]);
        if (res.status === 200) {
          const live = rows.filter(
            (r) =>
              r.user_id === entry.user_id &&
              (r.expiry === null || r.expiry > new Date()),
          );
          expect(
            (res.body as { id: string }[]).map((t) => t.id).sort(),
          ).toEqual(live.map((r) => r.id).sort());
        }
      }
      expect(answers).toEqual(
        tokens.map((entry) => [entry.label, entry.expected_status]),
      );
    });
  });

  it('an unknown `schema` option is refused at boot', () => {
    expect(() =>
      KnoxModule.forRoot({
        userEntity: TestUser,
        schema: 'rails' as never,
        validateUser: async () => null,
      }),
    ).toThrow(
      "KnoxModule: `schema` must be 'knox' (a table nestjs-knox creates) or 'django' (a django-rest-knox table taken over by knoxMigrations(User, { schema: 'django' })); got rails.",
    );
  });
});

import 'reflect-metadata';
import { afterAll, beforeAll, beforeEach } from '@jest/globals';
import {
  Controller,
  Get,
  Module,
  UseGuards,
  type INestApplication,
  type Type,
} from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { EventEmitter2, EventEmitterModule } from '@nestjs/event-emitter';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import supertest from 'supertest';
import { DataSource, type Logger as TypeOrmLogger } from 'typeorm';
import { getDataSourceToken } from '@nestjs/typeorm';
import {
  KnoxAuth,
  KnoxGuard,
  KnoxModule,
  KnoxPublic,
  KnoxUser,
  type KnoxModuleExtras,
  type KnoxModuleOptions,
  type KnoxToken,
} from '../../lib/index.js';
import { FakeClock, TestUser } from './fixtures.js';
import { emptyTablesSql, testConnectionOptions } from './test-db.js';
import { tokenRow } from './token-rows.js';

export const DATABASE_URL =
  process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Counts and records the SQL the app sends. */
export class QueryRecorder implements TypeOrmLogger {
  queries: { sql: string; parameters?: unknown[] }[] = [];
  logQuery(sql: string, parameters?: unknown[]): void {
    this.queries.push({ sql, parameters });
  }
  logQueryError(): void {}
  logQuerySlow(): void {}
  logSchemaBuild(): void {}
  logMigration(): void {}
  log(): void {}
  reset(): void {
    this.queries = [];
  }
  /** Statements other than transaction control. */
  get statements(): string[] {
    return this.queries
      .map((q) => q.sql)
      .filter(
        (sql) => !/^(START TRANSACTION|BEGIN|COMMIT|ROLLBACK)/i.test(sql),
      );
  }
  get writes(): string[] {
    return this.statements.filter((sql) =>
      /^(INSERT|UPDATE|DELETE)/i.test(sql),
    );
  }
}

@Controller()
class ProbeController {
  @UseGuards(KnoxGuard)
  @Get('me')
  me(@KnoxUser() user: TestUser, @KnoxAuth() auth: KnoxToken) {
    return { id: user.id, username: user.username, tokenId: auth.id };
  }

  @KnoxPublic()
  @Get('public')
  open() {
    return { ok: true };
  }

  @Get('global')
  global(@KnoxUser() user: TestUser | undefined) {
    return { username: user?.username ?? null };
  }
}

export interface TestAppOptions {
  knox?: Partial<KnoxModuleOptions<TestUser>>;
  extras?: Partial<Omit<KnoxModuleExtras, 'userEntity'>>;
  platform?: 'express' | 'fastify';
  /** Install KnoxGuard as APP_GUARD. */
  globalGuard?: boolean;
  /** Import EventEmitterModule (default true). */
  events?: boolean;
  /** Extra modules / controllers of the test. */
  imports?: Type<unknown>[];
  controllers?: Type<unknown>[];
  /**
   * Register with forRootAsync: `true` / `'useFactory'` through a factory, `'useClass'` through
   * an options class, `'useExisting'` through an options provider exported by an imported module.
   */
  async?: boolean | 'useFactory' | 'useClass' | 'useExisting';
  /** Keep the rows left by earlier apps instead of truncating the tables. */
  keepData?: boolean;
  /** Express's `trust proxy` setting, or Fastify's `trustProxy` option (unset: not trusted). */
  trustProxy?: boolean | string | string[];
  /** Connect to this URL instead of DATABASE_URL (e.g. through a TCP proxy). */
  databaseUrl?: string;
  /** TypeORM `extra`: pg pool settings such as `connectionTimeoutMillis`. */
  dataSourceExtra?: Record<string, unknown>;
  /** More TypeORM data source options (e.g. MySQL's `enableQueryTimeout`). */
  dataSourceOptions?: Record<string, unknown>;
  /** Called on the app before `init()` (e.g. to set a WebSocket adapter or a middleware). */
  configureApp?: (app: INestApplication) => void;
}

export interface TestApp {
  app: INestApplication;
  http: ReturnType<typeof supertest>;
  clock: FakeClock;
  dataSource: DataSource;
  recorder: QueryRecorder;
  events: { name: string; payload: any }[];
  createUser(
    username: string,
    password?: string,
    active?: boolean,
  ): Promise<TestUser>;
  tokenRows(): Promise<Record<string, any>[]>;
  /** Empties the tables and resets the clock, the events and the recorder (one app, many tests). */
  reset(): Promise<void>;
  close(): Promise<void>;
}

/** Boots a real Nest app with KnoxModule on the real PostgreSQL, tables emptied. */
export async function createTestApp(
  options: TestAppOptions = {},
): Promise<TestApp> {
  const clock = new FakeClock();
  const startedAt = clock.now();
  const recorder = new QueryRecorder();
  const dataSources: Promise<DataSource>[] = [];
  const knoxOptions: KnoxModuleOptions<TestUser> = {
    validateUser: async (username, password) => {
      const users = testApp.dataSource.getRepository(TestUser);
      const user = await users.findOneBy({ username });
      // Compared again here: MariaDB's collations ignore trailing spaces (PAD SPACE, even
      // utf8mb4_bin finds 'alice' for 'alice '), its default one case too.
      return user && user.username === username && user.password === password
        ? user
        : null;
    },
    clock,
    loginThrottle: false,
    ...options.knox,
  };
  class TestKnoxOptionsFactory {
    create(): KnoxModuleOptions<TestUser> {
      return knoxOptions;
    }
  }
  @Module({
    providers: [TestKnoxOptionsFactory],
    exports: [TestKnoxOptionsFactory],
  })
  class TestKnoxOptionsModule {}
  const knox =
    options.async === 'useExisting'
      ? KnoxModule.forRootAsync({
          userEntity: TestUser,
          ...options.extras,
          imports: [TestKnoxOptionsModule],
          useExisting: TestKnoxOptionsFactory,
        })
      : options.async === 'useClass'
        ? KnoxModule.forRootAsync({
            userEntity: TestUser,
            ...options.extras,
            useClass: TestKnoxOptionsFactory,
          })
        : options.async
          ? KnoxModule.forRootAsync({
              userEntity: TestUser,
              ...options.extras,
              useFactory: async () => knoxOptions,
            })
          : KnoxModule.forRoot({
              userEntity: TestUser,
              ...options.extras,
              ...knoxOptions,
            });

  @Module({
    imports: [
      TypeOrmModule.forRootAsync({
        useFactory: () => ({
          ...(testConnectionOptions(options.databaseUrl) as {
            type: 'postgres';
          }),
          ...(options.dataSourceExtra
            ? { extra: options.dataSourceExtra }
            : {}),
          ...options.dataSourceOptions,
          autoLoadEntities: true,
          entities: [TestUser],
          synchronize: true,
          retryAttempts: 0,
          logging: ['query' as const],
          logger: recorder,
        }),
        // Kept so that an app failing at boot (bad options) does not leave its pool open.
        dataSourceFactory: (dataSourceOptions) => {
          const initializing = new DataSource(dataSourceOptions!).initialize();
          dataSources.push(initializing);
          return initializing;
        },
      }),
      ...(options.events === false ? [] : [EventEmitterModule.forRoot()]),
      knox,
      ...(options.imports ?? []),
    ],
    controllers: [ProbeController, ...(options.controllers ?? [])],
    providers: options.globalGuard
      ? [{ provide: APP_GUARD, useClass: KnoxGuard }]
      : [],
  })
  class AppModule {}

  let app: INestApplication;
  try {
    const moduleRef = await Test.createTestingModule({
      imports: [AppModule],
    }).compile();
    app =
      options.platform === 'fastify'
        ? moduleRef.createNestApplication(
            new FastifyAdapter(
              options.trustProxy === undefined
                ? undefined
                : { trustProxy: options.trustProxy },
            ),
          )
        : moduleRef.createNestApplication();
    if (options.platform !== 'fastify' && options.trustProxy !== undefined) {
      (
        app.getHttpAdapter().getInstance() as {
          set(setting: string, value: unknown): unknown;
        }
      ).set('trust proxy', options.trustProxy);
    }
    app.useLogger(false);
    options.configureApp?.(app);
    await app.init();
    if (options.platform === 'fastify') {
      await (
        app.getHttpAdapter().getInstance() as { ready(): Promise<void> }
      ).ready();
    }
  } catch (error) {
    await Promise.all(
      dataSources.map((initializing) =>
        initializing.then(
          (ds) => ds.destroy(),
          () => undefined,
        ),
      ),
    );
    throw error;
  }
  const dataSource = app.get<DataSource>(getDataSourceToken());
  const truncate = async () => {
    for (const statement of emptyTablesSql([
      'knox_authtoken',
      'knox_test_user',
    ])) {
      await dataSource.query(statement);
    }
  };
  if (!options.keepData) {
    await truncate();
  }
  const events: { name: string; payload: any }[] = [];
  if (options.events !== false) {
    app
      .get(EventEmitter2)
      .onAny((name: string | string[], payload: unknown) => {
        events.push({ name: String(name), payload });
      });
  }
  const testApp: TestApp = {
    app,
    http: supertest(app.getHttpServer()),
    clock,
    dataSource,
    recorder,
    events,
    createUser: async (username, password = 'secret-password', active = true) =>
      dataSource
        .getRepository(TestUser)
        .save({ username, password, isActive: active }),
    tokenRows: async () =>
      (
        await dataSource.query(`SELECT * FROM knox_authtoken ORDER BY created`)
      ).map(tokenRow),
    reset: async () => {
      // DELETE, much cheaper than TRUNCATE on tables this small.
      await dataSource.query('DELETE FROM knox_authtoken');
      await dataSource.query('DELETE FROM knox_test_user');
      clock.set(startedAt);
      events.length = 0;
      recorder.reset();
    },
    close: () => app.close(),
  };
  recorder.reset();
  return testApp;
}

/** What `useTestApp` returns: its app, valid in hooks and tests, and what `seed` made for this test. */
export type SharedTestApp<S> = TestApp & { readonly seeded: S };

/**
 * Boots one app for the enclosing describe (closed after it); before each test, `reset()`s it
 * and runs `seed`. Usage: `const t = useTestApp({ platform }, async (app) => ({ alice: await
 * app.createUser('alice') }));`, then `t.http`, `login(t, 'alice')`, `t.seeded.alice` in tests.
 */
export function useTestApp<S = void>(
  options: TestAppOptions = {},
  seed?: (app: TestApp) => Promise<S>,
): SharedTestApp<S> {
  let current: TestApp | undefined;
  let seeded: S;
  const live = (): TestApp => {
    if (!current) {
      throw new Error('useTestApp: the app exists only in hooks and tests');
    }
    return current;
  };
  beforeAll(async () => {
    current = await createTestApp(options);
  });
  afterAll(() => current?.close());
  beforeEach(async () => {
    await live().reset();
    seeded = (await seed?.(live())) as S;
  });
  return {
    get app() {
      return live().app;
    },
    get http() {
      return live().http;
    },
    get clock() {
      return live().clock;
    },
    get dataSource() {
      return live().dataSource;
    },
    get recorder() {
      return live().recorder;
    },
    get events() {
      return live().events;
    },
    createUser: (...args) => live().createUser(...args),
    tokenRows: () => live().tokenRows(),
    reset: () => live().reset(),
    close: () => live().close(),
    get seeded() {
      return seeded;
    },
  };
}

/** Logs in with a JSON body and returns the plaintext token. */
export async function login(
  t: TestApp,
  username: string,
  password = 'secret-password',
  extra: Record<string, unknown> = {},
): Promise<string> {
  const res = await t.http
    .post('/auth/login')
    .send({ username, password, ...extra });
  if (res.status !== 200) {
    throw new Error(`login failed: ${res.status} ${JSON.stringify(res.body)}`);
  }
  return res.body.token as string;
}

/**
 * True when the tests run on the embedded PGlite, which is a single PostgreSQL session:
 * transactions run one after another, so a test that holds a lock on one connection while
 * another waits for it cannot run there (the race it checks cannot happen there either).
 */
export const EMBEDDED_DB = process.env.KNOX_TEST_EMBEDDED_DB === '1';

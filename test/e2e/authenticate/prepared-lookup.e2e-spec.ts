import 'reflect-metadata';
import {
  afterAll,
  beforeAll,
  beforeEach,
  describe,
  expect,
  it,
} from '@jest/globals';
import { Module, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule, getDataSourceToken } from '@nestjs/typeorm';
import pg from 'pg';
import {
  AfterLoad,
  Column,
  Entity,
  EventSubscriber,
  PrimaryGeneratedColumn,
  type DataSource,
  type EntitySubscriberInterface,
  type InsertEvent,
} from 'typeorm';
import { KnoxModule, KnoxTokenService } from '../../../lib/index.js';
import { FakeClock } from '../../support/fixtures.js';
import { createTestSchema, type TestSchema } from '../../support/schema.js';
import { DATABASE_URL, QueryRecorder } from '../../support/test-app.js';

/** A value a column transformer makes: the user must come back through TypeORM's hydration. */
class Handle {
  constructor(readonly value: string) {}
}

/** A user entity with a custom table, column names, a transformer, a date and an `@AfterLoad`. */
@Entity('prepared_member')
class Member {
  @PrimaryGeneratedColumn({ name: 'member_no' })
  id: number;

  @Column({
    name: 'handle_text',
    type: 'varchar',
    length: 60,
    transformer: {
      to: (value: Handle | string) =>
        value instanceof Handle ? value.value : value,
      from: (value: string) => new Handle(value),
    },
  })
  handle: Handle;

  @Column({ name: 'joined_on', type: 'timestamptz' })
  joined: Date;

  loaded = false;

  @AfterLoad()
  markLoaded() {
    this.loaded = true;
  }
}

/** Counts TypeORM's query and load events, as an app's subscriber would see them. */
@EventSubscriber()
class EventCounter implements EntitySubscriberInterface {
  static readonly seen: string[] = [];
  beforeQuery(event: { query: string }) {
    EventCounter.seen.push(`before ${event.query.slice(0, 6)}`);
  }
  afterQuery(event: { query: string; success: boolean }) {
    EventCounter.seen.push(`after ${event.query.slice(0, 6)} ${event.success}`);
  }
  afterLoad(entity: unknown) {
    EventCounter.seen.push(`load ${(entity as object).constructor.name}`);
  }
  afterInsert(_event: InsertEvent<unknown>) {}
}

/** The names of the named statements the process sends (pg's query config `name`). */
const statementNames: string[] = [];
const originalQuery = pg.Client.prototype.query as (
  ...args: unknown[]
) => unknown;

describe('the uncached lookup as a named prepared statement', () => {
  let schema: TestSchema;
  let app: INestApplication;
  let dataSource: DataSource;
  let service: KnoxTokenService;
  const recorder = new QueryRecorder();

  beforeAll(async () => {
    pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
      const config = args[0] as { name?: string } | string;
      if (typeof config === 'object' && config?.name) {
        statementNames.push(config.name);
      }
      return originalQuery.apply(this, args);
    } as typeof pg.Client.prototype.query;
    schema = await createTestSchema();
    @Module({
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: DATABASE_URL,
          schema: schema.name,
          // One connection: the test can drop the statement from the very session that holds it.
          extra: { max: 1 },
          autoLoadEntities: true,
          entities: [Member],
          subscribers: [EventCounter],
          synchronize: true,
          retryAttempts: 0,
          logging: ['query'],
          logger: recorder,
        }),
        KnoxModule.forRoot({
          userEntity: Member,
          tableName: 'prepared_tokens',
          validateUser: async () => null,
          clock: new FakeClock(),
        }),
      ],
    })
    class AppModule {}
    const moduleRef = await Test.createTestingModule({
      imports: [AppModule],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    dataSource = app.get<DataSource>(getDataSourceToken());
    service = app.get(KnoxTokenService);
  });

  afterAll(async () => {
    pg.Client.prototype.query =
      originalQuery as typeof pg.Client.prototype.query;
    await app?.close();
    await schema?.drop();
  });

  beforeEach(() => {
    recorder.reset();
    statementNames.length = 0;
    EventCounter.seen.length = 0;
  });

  async function member(handle: string): Promise<Member> {
    const members = dataSource.getRepository(Member);
    return members.save(
      members.create({
        handle: new Handle(handle),
        joined: new Date('2029-05-01T10:00:00Z'),
      }),
    );
  }

  it('sends one named SELECT and hydrates the user as TypeORM does (class, names, transformer, date, @AfterLoad, subscribers)', async () => {
    const { token } = await service.create(await member('ada'), {
      ttl: null,
    });
    recorder.reset();
    statementNames.length = 0;
    EventCounter.seen.length = 0;

    const { user, token: record } = await service.authenticate(token);

    expect(user).toBeInstanceOf(Member);
    expect((user as Member).handle).toBeInstanceOf(Handle);
    expect((user as Member).handle.value).toBe('ada');
    expect((user as Member).joined).toEqual(new Date('2029-05-01T10:00:00Z'));
    expect((user as Member).loaded).toBe(true);
    expect(record.expiry).toBeNull();
    expect(recorder.statements).toHaveLength(1);
    expect(recorder.statements[0]).toMatch(
      new RegExp(`^SELECT .* FROM "${schema.name}"\\."prepared_tokens"`, 's'),
    );
    expect(recorder.statements[0]).toMatch(/"token"\."digest" = \$1/);
    expect(statementNames).toHaveLength(1);
    expect(statementNames[0]).toMatch(/^knox_[0-9a-f]{32}_[0-9a-f]{8}_[0-9]+$/);
    expect(EventCounter.seen).toEqual([
      'before SELECT',
      'after SELECT true',
      'load Member',
      'load KnoxToken',
    ]);
  });

  it('falls back to the query builder, without failing the request, once the server refuses the named statement', async () => {
    const { token } = await service.create(await member('grace'), {
      ttl: null,
    });
    await service.authenticate(token);
    // The statement is gone from the session while pg still believes it prepared (as behind a
    // pooler in transaction mode, which hands out another server connection).
    await dataSource.query('DEALLOCATE ALL');
    recorder.reset();
    statementNames.length = 0;

    const first = await service.authenticate(token);
    expect(first.user).toBeInstanceOf(Member);
    expect((first.user as Member).handle.value).toBe('grace');
    // The refused statement, then the same lookup through the query builder.
    expect(recorder.statements).toHaveLength(2);
    expect(recorder.statements[1]).toBe(recorder.statements[0]);
    expect(statementNames).toHaveLength(1);

    recorder.reset();
    statementNames.length = 0;
    const second = await service.authenticate(token);
    expect((second.user as Member).handle.value).toBe('grace');
    expect(recorder.statements).toHaveLength(1);
    expect(statementNames).toHaveLength(0);
  });
});

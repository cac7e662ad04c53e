import 'reflect-metadata';
import {
  afterAll,
  afterEach,
  beforeAll,
  beforeEach,
  describe,
  expect,
  it,
  jest,
} from '@jest/globals';
import { Module, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule, getDataSourceToken } from '@nestjs/typeorm';
import {
  AfterLoad,
  Column,
  Entity,
  EventSubscriber,
  PrimaryGeneratedColumn,
  SelectQueryBuilder,
  type DataSource,
  type EntitySubscriberInterface,
} from 'typeorm';
import { KnoxModule, KnoxTokenService } from '../../../lib/index.js';
import { FakeClock } from '../../support/fixtures.js';
import { QueryRecorder } from '../../support/test-app.js';
import { TEST_DB, testConnectionOptions } from '../../support/test-db.js';

/** A value a column transformer makes: the user must come back through TypeORM's hydration. */
class Handle {
  constructor(readonly value: string) {}
}

const DATE_TYPE = TEST_DB === 'postgres' ? 'timestamptz' : 'datetime';

/** A user entity with a custom table, column names, a transformer, a date and an `@AfterLoad`. */
@Entity('generated_member')
class GeneratedMember {
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

  @Column({ name: 'joined_on', type: DATE_TYPE })
  joined: Date;

  loaded = false;

  @AfterLoad()
  markLoaded() {
    this.loaded = true;
  }
}

/** Counts TypeORM's query and load events, as an app's subscriber would see them. */
@EventSubscriber()
class LookupEvents implements EntitySubscriberInterface {
  static readonly seen: string[] = [];
  beforeQuery(event: { query: string }) {
    LookupEvents.seen.push(`before ${event.query.slice(0, 6)}`);
  }
  afterQuery(event: { query: string; success: boolean }) {
    LookupEvents.seen.push(`after ${event.query.slice(0, 6)} ${event.success}`);
  }
  afterLoad(entity: unknown) {
    LookupEvents.seen.push(`load ${(entity as object).constructor.name}`);
  }
}

/**
 * On every database the uncached lookup's SQL is generated once by the query builder and reused
 * (PostgreSQL: a named prepared statement; MySQL/MariaDB and SQLite: the same text through
 * TypeORM's query runner), hydrated by TypeORM's transformer as `getMany` would.
 */
describe('the uncached lookup: SQL generated once, hydrated as TypeORM does', () => {
  let app: INestApplication;
  let dataSource: DataSource;
  let service: KnoxTokenService;
  const recorder = new QueryRecorder();
  let getMany: ReturnType<typeof jest.spyOn>;

  beforeAll(async () => {
    @Module({
      imports: [
        TypeOrmModule.forRoot({
          ...(testConnectionOptions() as { type: 'postgres' }),
          autoLoadEntities: true,
          entities: [GeneratedMember],
          subscribers: [LookupEvents],
          synchronize: true,
          retryAttempts: 0,
          logging: ['query'],
          logger: recorder,
        }),
        KnoxModule.forRoot({
          userEntity: GeneratedMember,
          tableName: 'generated_tokens',
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
    if (dataSource?.isInitialized) {
      await dataSource.query('DROP TABLE IF EXISTS generated_tokens');
      await dataSource.query('DROP TABLE IF EXISTS generated_member');
    }
    await app?.close();
  });

  beforeEach(() => {
    getMany = jest.spyOn(SelectQueryBuilder.prototype, 'getMany');
  });

  afterEach(() => {
    getMany.mockRestore();
  });

  async function member(handle: string): Promise<GeneratedMember> {
    const members = dataSource.getRepository(GeneratedMember);
    return members.save(
      members.create({
        handle: new Handle(handle),
        joined: new Date('2029-05-01T10:00:00Z'),
      }),
    );
  }

  it('sends one SELECT per uncached authentication, never through the query builder again', async () => {
    const { token } = await service.create(await member('ada'), {
      ttl: null,
    });
    await service.authenticate(token);
    recorder.reset();
    LookupEvents.seen.length = 0;
    getMany.mockClear();

    const { user, token: record } = await service.authenticate(token);

    expect(getMany).not.toHaveBeenCalled();
    expect(user).toBeInstanceOf(GeneratedMember);
    expect((user as GeneratedMember).handle).toBeInstanceOf(Handle);
    expect((user as GeneratedMember).handle.value).toBe('ada');
    expect((user as GeneratedMember).joined).toEqual(
      new Date('2029-05-01T10:00:00Z'),
    );
    expect((user as GeneratedMember).loaded).toBe(true);
    expect(record.expiry).toBeNull();
    expect(recorder.statements).toHaveLength(1);
    expect(recorder.statements[0]).toMatch(
      /^SELECT .* FROM ["`]generated_tokens["`]/s,
    );
    expect(LookupEvents.seen).toEqual([
      'before SELECT',
      'after SELECT true',
      'load GeneratedMember',
      'load KnoxToken',
    ]);
  });

  it('refuses a token whose row is gone with the same one statement', async () => {
    const { token } = await service.create(await member('grace'), {
      ttl: null,
    });
    await service.authenticate(token);
    await dataSource.query('DELETE FROM generated_tokens');
    recorder.reset();
    getMany.mockClear();

    await expect(service.authenticate(token)).rejects.toThrow();

    expect(getMany).not.toHaveBeenCalled();
    expect(recorder.statements).toHaveLength(1);
  });
});

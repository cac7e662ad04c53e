/**
 * Issue 13 on the django-rest-knox 5.0.2 fixture: after the takeover and the abilities
 * migration, every token Django issued (abilities NULL) passes every ability check, and its user
 * can create a personal access token that is as narrow as asked.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  Controller,
  Get,
  UseGuards,
  type INestApplication,
} from '@nestjs/common';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import supertest from 'supertest';
import { DataSource, type DataSourceOptions } from 'typeorm';
import {
  DjangoUser,
  KNOX_MIGRATION_NAMES,
  KnoxAbilities,
  KnoxAnyAbility,
  KnoxGuard,
  KnoxModule,
  knoxMigrations,
  knoxTokenEntity,
} from '../../../lib/index.js';
import {
  loadDjangoFixture,
  readDjangoFixture,
  type DjangoDatabase,
} from '../../support/schema.js';

@Controller('posts')
@UseGuards(KnoxGuard)
@KnoxAbilities('posts:read')
class PostsController {
  @Get()
  list() {
    return { did: 'read' };
  }

  @Get('admin')
  @KnoxAbilities('posts:admin', 'users:*')
  @KnoxAnyAbility('a', 'b')
  admin() {
    return { did: 'admin' };
  }
}

const { tokens } = JSON.parse(readDjangoFixture('tokens.json')) as {
  tokens: {
    label: string;
    token: string;
    username: string;
    expected_status: number;
  }[];
};
const { users } = JSON.parse(readDjangoFixture('users.json')) as {
  users: { username: string; password_plaintext: string }[];
};
/** The fixture's passwords: the app's credential check is its own business (Django's hashers are not the point here). */
const passwords = new Map(users.map((u) => [u.username, u.password_plaintext]));

describe.each(['express', 'fastify'] as const)(
  'Django-minted tokens and abilities (%s)',
  (platform) => {
    let db: DjangoDatabase;
    let app: INestApplication;
    let http: ReturnType<typeof supertest>;

    beforeAll(async () => {
      db = await loadDjangoFixture();
      const moduleRef = await Test.createTestingModule({
        imports: [
          TypeOrmModule.forRoot({
            type: 'postgres',
            url: db.url,
            schema: db.schema,
            entities: [
              DjangoUser,
              knoxTokenEntity(DjangoUser, { schema: 'django' }),
            ],
            migrations: knoxMigrations(DjangoUser, { schema: 'django' }),
            migrationsRun: true,
            synchronize: false,
            retryAttempts: 0,
          } as DataSourceOptions),
          KnoxModule.forRoot({
            userEntity: DjangoUser,
            schema: 'django',
            loginThrottle: false,
            validateUser: async (username: string, password: string) => {
              const user = await app
                .get(DataSource)
                .getRepository(DjangoUser)
                .findOneBy({ username });
              return user && passwords.get(username) === password ? user : null;
            },
          }),
        ],
        controllers: [PostsController],
      }).compile();
      app =
        platform === 'fastify'
          ? moduleRef.createNestApplication(new FastifyAdapter())
          : moduleRef.createNestApplication();
      app.useLogger(false);
      await app.init();
      if (platform === 'fastify') {
        await (
          app.getHttpAdapter().getInstance() as { ready(): Promise<void> }
        ).ready();
      }
      http = supertest(app.getHttpServer());
    });

    afterAll(async () => {
      await app?.close();
      await db?.drop();
    });

    it('the migrations ran, and every Django row has abilities NULL (and is a session)', async () => {
      const ds = app.get(DataSource);
      const ran: { name: string }[] = await ds.query(
        `SELECT name FROM "${db.schema}".migrations ORDER BY id`,
      );
      expect(ran.map((m) => m.name)).toEqual([
        KNOX_MIGRATION_NAMES.djangoTakeover,
        KNOX_MIGRATION_NAMES.tokenAbilities,
        KNOX_MIGRATION_NAMES.tokenKind,
        KNOX_MIGRATION_NAMES.tokenExpiryCap,
      ]);
      const [{ n }] = await ds.query(
        `SELECT count(*)::int AS n FROM "${db.schema}".knox_authtoken WHERE abilities IS NOT NULL OR kind <> 'session'`,
      );
      expect(n).toBe(0);
    });

    it('every live Django token passes every ability check; the others stay 401', async () => {
      const answers = [];
      for (const entry of tokens) {
        const auth = `Token ${entry.token}`;
        const read = await http.get('/posts').set('Authorization', auth);
        const admin = await http.get('/posts/admin').set('Authorization', auth);
        answers.push([entry.label, read.status, admin.status]);
      }
      expect(answers).toEqual(
        tokens.map((entry) => [
          entry.label,
          entry.expected_status,
          entry.expected_status,
        ]),
      );
    });

    it('its user creates a narrower personal access token with the password', async () => {
      const alice = tokens.find((entry) => entry.label === 'alice-1')!;
      const created = await http
        .post('/auth/tokens')
        .set('Authorization', `Token ${alice.token}`)
        .send({
          name: 'reader',
          abilities: ['posts:read'],
          password: passwords.get('alice'),
        });
      expect(created.status).toBe(201);
      const auth = `Token ${created.body.token}`;
      expect((await http.get('/posts').set('Authorization', auth)).status).toBe(
        200,
      );
      const denied = await http.get('/posts/admin').set('Authorization', auth);
      expect(denied.status).toBe(403);
      expect(denied.headers['www-authenticate']).toBe(
        'Token error="insufficient_scope", scope="posts:admin users:*"',
      );
      const listed = await http
        .get('/auth/tokens')
        .set('Authorization', `Token ${alice.token}`);
      expect(
        (listed.body as { name: string | null; abilities: unknown }[]).find(
          (s) => s.name === 'reader',
        )?.abilities,
      ).toEqual(['posts:read']);
      // Revoke it again: the fixture database is shared by the tests of this describe.
      await http
        .delete(`/auth/tokens/${created.body.id}`)
        .set('Authorization', `Token ${alice.token}`);
    });
  },
);

import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  Controller,
  Get,
  Module,
  UseGuards,
  type INestApplication,
} from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule, getDataSourceToken } from '@nestjs/typeorm';
import { createHash } from 'node:crypto';
import supertest from 'supertest';
import { DataSource, Entity } from 'typeorm';
import {
  DjangoAbstractUser,
  DjangoUser,
  KnoxGuard,
  KnoxModule,
  KnoxUser,
  KNOX_MIGRATION_NAMES,
  djangoPasswordNeedsRehash,
  djangoValidateUser,
  knoxMigrations,
  verifyDjangoPassword,
} from '../../../lib/index.js';
import { FakeClock } from '../../support/fixtures.js';
import { MESSAGES, basic } from '../../support/http.js';
import {
  djangoFixtureIterations,
  djangoFixtureTokens,
  djangoFixtureUsers,
} from '../../support/django-fixture.js';
import {
  loadDjangoFixture,
  openDataSource,
  tableShape,
  type DjangoDatabase,
  type TableShape,
} from '../../support/schema.js';

const tokens = djangoFixtureTokens();
const users = djangoFixtureUsers();
const iterations = djangoFixtureIterations();
const live = tokens
  .filter((t) => t.expected_status === 200)
  .map((t) => ({ ...t, row: t.row! }));
const refused = tokens.filter((t) => t.expected_status !== 200);
const user = (name: string) => users.find((u) => u.username === name)!;
/** The fixture's timestamps have microseconds; JavaScript dates keep milliseconds. */
const toMs = (iso: string) => new Date(iso).toISOString();

/** A custom user model on the same table, logging in by email (USERNAME_FIELD = 'email'). */
@Entity({ name: 'auth_user', synchronize: false })
class EmailUser extends DjangoAbstractUser {}

@Controller()
class MeController {
  @UseGuards(KnoxGuard)
  @Get('me')
  me(@KnoxUser() me: DjangoUser) {
    return { id: me.id, username: me.username };
  }
}

describe('a Nest app on the django-rest-knox 5.0.2 database (fixture), after the takeover migration', () => {
  let db: DjangoDatabase;
  let app: INestApplication;
  let http: ReturnType<typeof supertest>;
  let dataSource: DataSource;
  let djangoShapeBefore: Record<string, TableShape>;
  let djangoShapeAfterMigration: Record<string, TableShape>;
  // Just after the recording: alice-expired is an hour past its expiry, the others run to 2126.
  const clock = new FakeClock(
    new Date(
      Math.max(...tokens.map((t) => (t.row ? Date.parse(t.row.created) : 0))) +
        60_000,
    ),
  );

  beforeAll(async () => {
    db = await loadDjangoFixture();
    const before = await openDataSource({ url: db.url, schema: db.schema });
    try {
      djangoShapeBefore = {
        knox_authtoken: await tableShape(before, db.schema, 'knox_authtoken'),
        auth_user: await tableShape(before, db.schema, 'auth_user'),
      };
    } finally {
      await before.destroy();
    }

    @Module({
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: db.url,
          schema: db.schema,
          entities: [DjangoUser, EmailUser],
          autoLoadEntities: true,
          // The shipped takeover migration at boot; synchronize next to it (as the guide says,
          // TypeORM migrates first and then finds nothing to change).
          migrations: knoxMigrations(DjangoUser, { schema: 'django' }),
          migrationsRun: true,
          synchronize: true,
          retryAttempts: 0,
        }),
        KnoxModule.forRootAsync({
          userEntity: DjangoUser,
          schema: 'django',
          inject: [DataSource],
          useFactory: (ds: DataSource) => ({
            validateUser: djangoValidateUser(ds, { iterations, rehash: true }),
            // knox's TOKEN_PREFIX, chosen per login here to mint both shapes in one app.
            getTokenPrefix: ({ body }) =>
              typeof body.prefix === 'string' ? body.prefix : undefined,
            clock,
            loginThrottle: false,
          }),
        }),
      ],
      controllers: [MeController],
    })
    class AppModule {}

    const moduleRef = await Test.createTestingModule({
      imports: [AppModule],
    }).compile();
    app = moduleRef.createNestApplication();
    app.useLogger(false);
    await app.init();
    http = supertest(app.getHttpServer());
    dataSource = app.get<DataSource>(getDataSourceToken());
    djangoShapeAfterMigration = {
      knox_authtoken: await tableShape(dataSource, db.schema, 'knox_authtoken'),
      auth_user: await tableShape(dataSource, db.schema, 'auth_user'),
    };
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  const me = (token: string) =>
    http.get('/me').set('Authorization', `Token ${token}`);
  const row = async (digest: string) =>
    (
      await dataSource.query(
        `SELECT * FROM "${db.schema}".knox_authtoken WHERE digest = $1`,
        [digest],
      )
    )[0] as Record<string, any> | undefined;

  it('the fixture: 8 live tokens and 6 refused ones', () => {
    expect(live).toHaveLength(8);
    expect(refused).toHaveLength(6);
    expect(live.some((t) => t.row.expiry === null)).toBe(true);
    expect(live.some((t) => t.token.startsWith('dj_'))).toBe(true);
  });

  it.each(live.map((t) => [t.label, t] as const))(
    '%s: authenticates as its Django user over HTTP',
    async (_label, token) => {
      const res = await me(token.token);
      expect({ status: res.status, body: res.body }).toEqual({
        status: 200,
        body: { id: token.user_id, username: token.username },
      });
      expect(token.expected_body).toEqual({ username: token.username });
    },
  );

  it.each(refused.map((t) => [t.label, t] as const))(
    "%s: refused with knox's answer",
    async (_label, token) => {
      const res = await me(token.token);
      expect(res.status).toBe(token.expected_status);
      expect(res.status).toBe(401);
      expect(res.body.message).toBe(token.expected_body.detail);
      expect(res.headers['www-authenticate']).toMatch(/^Token\b/);
    },
  );

  it('the expired token was refused as "Invalid token." and its row deleted, as knox does', async () => {
    const expired = refused.filter((t) => t.expired);
    expect(expired.length).toBeGreaterThan(0);
    for (const token of expired) {
      expect(token.expected_body.detail).toBe(MESSAGES.INVALID_TOKEN);
      expect((await me(token.token)).status).toBe(401);
      expect(await row(token.row!.digest)).toBeUndefined();
    }
    const inactive = refused.filter((t) => t.user_inactive);
    expect(inactive.map((t) => t.expected_body.detail)).toEqual(
      inactive.map(() => MESSAGES.USER_INACTIVE),
    );
  });

  it("GET /auth/tokens lists the Django rows of the caller: each live one, with the times Django wrote, and never another user's", async () => {
    for (const name of ['alice', 'bob', 'heidi']) {
      const mine = live.filter((t) => t.username === name);
      const res = await http
        .get('/auth/tokens')
        .set('Authorization', `Token ${mine[0].token}`);
      expect(res.status).toBe(200);
      const listed = res.body as Record<string, unknown>[];
      const expected = mine.map((t) => ({
        created: toMs(t.row.created),
        expiry: t.row.expiry === null ? null : toMs(t.row.expiry),
      }));
      // Tokens minted by other tests of this file may be listed too; the Django rows must all be.
      for (const one of expected) {
        expect(listed).toContainEqual(expect.objectContaining(one));
      }
      const django = listed.filter((s) =>
        expected.some((e) => e.created === s.created),
      );
      expect(django).toHaveLength(mine.length);
      for (const session of django) {
        // The takeover migration gave every Django row a public id.
        expect(session.id).toMatch(
          /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
        );
        expect(session.name).toBeNull();
        expect(JSON.stringify(session)).not.toMatch(/digest|[0-9a-f]{128}/);
      }
      expect(django.filter((s) => s.current === true)).toHaveLength(1);
    }
  });

  it.each(
    users
      .filter((u) => u.expected_basic_login_status === 200)
      .map((u) => [u.username, u.algorithm, u] as const),
  )(
    '%s (%s) logs in with the Django password, and the token minted is one knox 5 accepts',
    async (name, _algorithm, django) => {
      // HTTP Basic with the UTF-8 credentials, as the fixture's logins were made.
      const res = await http
        .post('/auth/login')
        .set('Authorization', basic(name, django.password_plaintext!));
      expect(res.status).toBe(200);
      const token = res.body.token as string;
      // knox 5 with AUTH_TOKEN_CHARACTER_LENGTH 64 and no prefix: 64 lowercase hex characters.
      expect(token).toMatch(/^[0-9a-f]{64}$/);
      const digest = createHash('sha512').update(token, 'utf8').digest('hex');
      const stored = await row(digest);
      expect(stored).toMatchObject({
        digest,
        token_key: token.slice(0, 15),
        user_id: django.id,
        created: clock.now(),
      });
      // The fixture's rules: digest is sha512 of the whole token, token_key its first 15.
      const sample = live[0];
      expect(sample.row.digest).toBe(
        createHash('sha512').update(sample.token, 'utf8').digest('hex'),
      );
      expect(sample.row.token_key).toBe(sample.token.slice(0, 15));
      expect((await me(token)).body).toEqual({ id: django.id, username: name });
    },
  );

  it('wrong, unusable and inactive: 401 and no token', async () => {
    const before = (
      await dataSource.query(
        `SELECT count(*)::int AS n FROM "${db.schema}".knox_authtoken`,
      )
    )[0].n;
    const attempts: [string, string, string][] = [
      ['alice', 'alice-pw-2', MESSAGES.BAD_CREDENTIALS],
      ['nobody', 'alice-pw-1', MESSAGES.BAD_CREDENTIALS],
      ['grace', 'x', MESSAGES.BAD_CREDENTIALS],
      ['grace', user('grace').password, MESSAGES.BAD_CREDENTIALS],
      ['frank', user('frank').password_plaintext!, MESSAGES.USER_INACTIVE],
      ['ALICE', 'alice-pw-1', MESSAGES.BAD_CREDENTIALS],
    ];
    for (const [username, password, message] of attempts) {
      const res = await http.post('/auth/login').send({ username, password });
      expect({
        username,
        status: res.status,
        message: res.body.message,
      }).toEqual({ username, status: 401, message });
    }
    const after = (
      await dataSource.query(
        `SELECT count(*)::int AS n FROM "${db.schema}".knox_authtoken`,
      )
    )[0].n;
    expect(after).toBe(before);
  });

  it("rehash: true rewrote carol's, dave's and erin's hashes as pbkdf2_sha256 at Django's count, as Django's own login would; current ones were left alone", async () => {
    const rows: { username: string; password: string }[] =
      await dataSource.query(
        `SELECT username, password FROM "${db.schema}".auth_user ORDER BY id`,
      );
    for (const django of users) {
      const now = rows.find((r) => r.username === django.username)!.password;
      if (['carol', 'dave', 'erin'].includes(django.username)) {
        expect(now).toMatch(new RegExp(`^pbkdf2_sha256\\$${iterations}\\$`));
        expect(djangoPasswordNeedsRehash(now, { iterations })).toBe(false);
        expect(
          await verifyDjangoPassword(django.password_plaintext!, now),
        ).toBe(true);
      } else {
        expect(now).toBe(django.password);
      }
    }
  });

  it("djangoValidateUser without rehash leaves Django's table untouched; updateLastLogin sets last_login", async () => {
    const heidi = user('heidi');
    const plain = djangoValidateUser(dataSource, { iterations: 600_000 });
    const found = await plain('heidi', heidi.password_plaintext!);
    expect(found).toBeInstanceOf(DjangoUser);
    expect(found).toMatchObject({
      id: heidi.id,
      username: 'heidi',
      email: heidi.email,
      isActive: true,
      isStaff: false,
      isSuperuser: false,
      lastLogin: new Date(heidi.last_login!),
      dateJoined: new Date(heidi.date_joined),
    });
    // Outdated at 600 000 iterations, but nobody asked for a rehash.
    const [stored] = await dataSource.query(
      `SELECT password, last_login FROM "${db.schema}".auth_user WHERE id = $1`,
      [heidi.id],
    );
    expect(stored.password).toBe(heidi.password);
    expect(JSON.stringify(found)).not.toContain(heidi.password);

    const withLastLogin = djangoValidateUser(
      dataSource.getRepository(DjangoUser),
      { iterations, updateLastLogin: true },
    );
    const started = Date.now();
    expect(await withLastLogin('heidi', 'wrong')).toBeNull();
    expect(
      await withLastLogin('heidi', heidi.password_plaintext!),
    ).not.toBeNull();
    const [updated] = await dataSource.query(
      `SELECT last_login FROM "${db.schema}".auth_user WHERE id = $1`,
      [heidi.id],
    );
    expect(updated.last_login.getTime()).toBeGreaterThanOrEqual(started);
    // Inactive users keep their last_login.
    const frank = user('frank');
    expect(
      await withLastLogin('frank', frank.password_plaintext!),
    ).toMatchObject({ isActive: false });
    const [frankRow] = await dataSource.query(
      `SELECT last_login FROM "${db.schema}".auth_user WHERE id = $1`,
      [frank.id],
    );
    expect(frankRow.last_login).toEqual(new Date(frank.last_login!));
  });

  it("a token minted with knox's `dj_` prefix is stored as knox 5 stores the fixture's `dj_` tokens", async () => {
    const heidi = user('heidi');
    const res = await http.post('/auth/login').send({
      username: 'heidi',
      password: heidi.password_plaintext,
      prefix: 'dj_',
    });
    expect(res.status).toBe(200);
    const token = res.body.token as string;
    const django = live.find((t) => t.token.startsWith('dj_'))!;
    // Same shape as Django's: prefix + 64 lowercase hex.
    expect(token).toMatch(/^dj_[0-9a-f]{64}$/);
    expect(django.token).toMatch(/^dj_[0-9a-f]{64}$/);
    const sha512 = (t: string) =>
      createHash('sha512').update(t, 'utf8').digest('hex');
    expect(django.row.digest).toBe(sha512(django.token));
    expect(django.row.token_key).toBe(django.token.slice(0, 15));
    expect(await row(sha512(token))).toMatchObject({
      token_key: token.slice(0, 15),
      user_id: heidi.id,
    });
    expect((await me(token)).body).toEqual({ id: heidi.id, username: 'heidi' });
  });

  it('a custom user model: djangoValidateUser with `entity` and `usernameField`', async () => {
    const byEmail = djangoValidateUser(dataSource, {
      entity: EmailUser,
      usernameField: 'email',
      iterations,
    });
    const alice = user('alice');
    const found = await byEmail('alice@example.com', alice.password_plaintext!);
    expect(found).toBeInstanceOf(EmailUser);
    expect(found?.id).toBe(alice.id);
    expect(await byEmail('alice', alice.password_plaintext!)).toBeNull();
    expect(
      await byEmail('ALICE@example.com', alice.password_plaintext!),
    ).toBeNull();
  });

  it("logout and logoutall on Nest delete Django's rows, which is how knox revokes", async () => {
    const [first, second] = live.filter((t) => t.username === 'alice');
    const out = await http
      .post('/auth/logout')
      .set('Authorization', `Token ${first.token}`);
    expect(out.status).toBe(204);
    expect(await row(first.row.digest)).toBeUndefined();
    expect((await me(first.token)).status).toBe(401);
    expect((await me(second.token)).status).toBe(200);

    const all = await http
      .post('/auth/logoutall')
      .set('Authorization', `Token ${second.token}`);
    expect(all.status).toBe(204);
    const left = await dataSource.query(
      `SELECT count(*)::int AS n FROM "${db.schema}".knox_authtoken WHERE user_id = $1`,
      [user('alice').id],
    );
    expect(left[0].n).toBe(0);
    // Other users' Django tokens are untouched.
    const bob = live.find((t) => t.username === 'bob')!;
    expect((await me(bob.token)).status).toBe(200);
  });

  it("Django's schema is as schema.sql made it plus the takeover's columns, and the app changes none of it", async () => {
    const [migration] = await dataSource.query(
      `SELECT name FROM "${db.schema}".migrations`,
    );
    expect(migration).toEqual({ name: KNOX_MIGRATION_NAMES.djangoTakeover });
    // What synchronize would run now: nothing.
    expect(
      (await dataSource.driver.createSchemaBuilder().log()).upQueries,
    ).toEqual([]);
    const now = {
      knox_authtoken: await tableShape(dataSource, db.schema, 'knox_authtoken'),
      auth_user: await tableShape(dataSource, db.schema, 'auth_user'),
    };
    expect(now).toEqual(djangoShapeAfterMigration);
    expect(now.auth_user).toEqual(djangoShapeBefore.auth_user);
    const token = now.knox_authtoken;
    const django = djangoShapeBefore.knox_authtoken;
    expect(token.columns.slice(0, django.columns.length)).toEqual(
      django.columns,
    );
    expect(token.constraints).toEqual(
      expect.arrayContaining(django.constraints),
    );
    expect(token.indexes).toEqual(expect.arrayContaining(django.indexes));
    expect(django.indexes.map((i) => i.indexname)).toEqual([
      'knox_authtoken_digest_188c7e77_like',
      'knox_authtoken_pkey',
      'knox_authtoken_token_key_8f4f7d47',
      'knox_authtoken_token_key_8f4f7d47_like',
      'knox_authtoken_user_id_e5a5d899',
    ]);
    expect(django.constraints.map((c) => c.conname)).toContain(
      'knox_authtoken_user_id_e5a5d899_fk_auth_user_id',
    );
  });
});

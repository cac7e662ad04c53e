import { afterEach, describe, expect, it } from '@jest/globals';
import { KnoxModule, KnoxOptionsError } from '../../lib/index.js';
import { TestUser } from '../support/fixtures.js';
import { createTestApp, type TestApp } from '../support/test-app.js';

/** The error an app fails to boot with. */
async function bootError(
  options: Parameters<typeof createTestApp>[0],
): Promise<Error> {
  let app: TestApp | undefined;
  try {
    app = await createTestApp(options);
  } catch (error) {
    expect(error).toBeInstanceOf(KnoxOptionsError);
    return error as Error;
  }
  await app.close();
  throw new Error('the app booted');
}

/** Logs alice in through the controller mounted at `path`. */
async function loginAt(t: TestApp, path: string) {
  await t.createUser('alice');
  return t.http
    .post(`/${path}/login`)
    .send({ username: 'alice', password: 'secret-password' });
}

const TYPO = "KnoxModule: unknown option 'tokenTTL' — did you mean 'tokenTtl'?";
const STRING_TTL =
  "KnoxModule: `tokenTtl` must be a duration in milliseconds (a finite number >= 0) or null; got the string '3600000'. Configuration values are strings: convert it with `Number(...)`, or have a @nestjs/config validation schema convert it (e.g. `Joi.number()`) and read it with `ConfigService.get<number>(…, { infer: true })`.";

describe('options are checked the same way in both forms', () => {
  afterEach(() => {
    delete process.env.TOKEN_TTL_MS;
  });

  it.each([
    ['forRoot', false],
    ['forRootAsync (useFactory)', true],
    ['forRootAsync (useClass)', 'useClass'],
  ] as const)(
    '%s: an unknown key fails the boot, naming the nearest option',
    async (_form, async) => {
      const error = await bootError({
        async,
        knox: { tokenTTL: 5 * 60_000 } as never,
      });
      expect(error.message).toBe(TYPO);
    },
  );

  it.each([
    ['forRoot', false],
    ['forRootAsync (useFactory)', true],
  ] as const)(
    '%s: a TTL read from the environment as a string fails the boot, saying it got a string and how to convert it',
    async (_form, async) => {
      process.env.TOKEN_TTL_MS = '3600000';
      const error = await bootError({
        async,
        knox: { tokenTtl: process.env.TOKEN_TTL_MS as never },
      });
      expect(error.message).toBe(STRING_TTL);
    },
  );

  it('forRootAsync: an option given beside useFactory (where Nest would drop it) is refused, and so is an unknown key', () => {
    const useFactory = () => ({ validateUser: async () => null });
    expect(() =>
      KnoxModule.forRootAsync({
        userEntity: TestUser,
        useFactory,
        tokenTtl: 5,
      } as never),
    ).toThrow(
      new KnoxOptionsError(
        '`tokenTtl` is an option, not a module setting: with forRootAsync, return it from the factory (useFactory: () => ({ tokenTtl: …, validateUser })), not beside it.',
      ),
    );
    expect(() =>
      KnoxModule.forRootAsync({
        userEntity: TestUser,
        useFactory,
        autorefresh: true,
      } as never),
    ).toThrow(
      "KnoxModule: unknown setting 'autorefresh' given to forRootAsync() — did you mean 'autoRefresh'?",
    );
    expect(() =>
      KnoxModule.forRootAsync({
        userEntity: TestUser,
        useFactory,
        path: 'session',
      }),
    ).not.toThrow();
  });

  it('forRootAsync: a factory returning a module setting is told to give it to forRootAsync itself', async () => {
    const error = await bootError({
      async: true,
      knox: { tableName: 'knox_authtoken' } as never,
    });
    expect(error.message).toBe(
      'KnoxModule: `tableName` is a module setting, not an option: with forRootAsync, give it to forRootAsync() itself, beside useFactory (e.g. KnoxModule.forRootAsync({ tableName: …, useFactory })), not in the options the factory returns.',
    );
  });

  it('forRootAsync: module settings beside useFactory and Number(env) options boot and apply', async () => {
    process.env.TOKEN_TTL_MS = '3600000';
    const t = await createTestApp({
      async: true,
      extras: { path: 'sessions', isGlobal: true, tableName: 'knox_authtoken' },
      knox: { tokenTtl: Number(process.env.TOKEN_TTL_MS) },
    });
    try {
      const res = await loginAt(t, 'sessions');
      expect(res.status).toBe(200);
      expect(res.body.expiry).toBe(
        new Date(t.clock.now().getTime() + 3_600_000).toISOString(),
      );
      expect((await t.http.post('/auth/login').send({})).status).toBe(404);
    } finally {
      await t.close();
    }
  });

  it('forRoot: module settings are not options (the builder keeps them apart)', async () => {
    const t = await createTestApp({ extras: { path: 'sessions' } });
    try {
      const res = await loginAt(t, 'sessions');
      expect(res.status).toBe(200);
      expect(res.body.token).toMatch(/^[0-9a-f]{64}$/);
    } finally {
      await t.close();
    }
  });
});

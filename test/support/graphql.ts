/** A GraphQL app for tests of many aliases: a guarded `me`, a logger that counts lines. */
import { Module, UseGuards } from '@nestjs/common';
import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import { GraphQLModule, Query, Resolver } from '@nestjs/graphql';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { KnoxUser } from '../../lib/index.js';
import { KnoxGqlGuard } from '../../lib/transports/graphql/index.js';
import type { TestUser } from './fixtures.js';
import type { LogLines } from './log-lines.js';
import {
  createTestApp,
  type TestApp,
  type TestAppOptions,
} from './test-app.js';

/** `{ a0: me { username } a1: me { username } … }` */
export const aliases = (n: number) =>
  `{ ${Array.from({ length: n }, (_, i) => `a${i}: me { username }`).join(' ')} }`;

@Resolver()
@UseGuards(KnoxGqlGuard)
export class MeResolver {
  @Query('me')
  me(@KnoxUser() user: TestUser) {
    return { username: user.username };
  }
}

export const apollo = () =>
  GraphQLModule.forRoot<ApolloDriverConfig>({
    driver: ApolloDriver,
    typeDefs: 'type Me { username: String! } type Query { me: Me }',
    includeStacktraceInErrorResponses: false,
  });

@Module({ imports: [apollo()], providers: [MeResolver] })
export class AliasesApp {}

export interface GqlAnswer {
  status: number;
  body: {
    data?: Record<string, unknown> | null;
    errors?: { message: string; extensions?: Record<string, unknown> }[];
  };
}

/** Boots the test app with the aliases schema, `log` as its logger, and the user alice. */
export async function bootGraphQL(
  log: LogLines,
  options: TestAppOptions = {},
): Promise<TestApp> {
  const t = await createTestApp({
    imports: [AliasesApp],
    ...options,
    configureApp: (app) => {
      options.configureApp?.(app);
      app.useLogger(log);
      // 9 000 aliases are more than Express's default 100 kB JSON body.
      (app as NestExpressApplication).useBodyParser('json', { limit: '1mb' });
    },
  });
  await t.createUser('alice');
  log.reset();
  return t;
}

/** POST /graphql with `query`, and `Authorization: Token <token>` when given. */
export function postGql(
  t: TestApp,
  query: string,
  token?: string,
): Promise<GqlAnswer> {
  const request = t.http.post('/graphql').send({ query });
  return (
    token ? request.set('Authorization', `Token ${token}`) : request
  ).then((res) => ({
    status: res.status,
    body: res.body as GqlAnswer['body'],
  }));
}

/** The lookups of the token row the app sent (`recorder` statements reading knox_authtoken). */
export const lookups = (t: TestApp) =>
  t.recorder.statements.filter(
    (sql) => /^\s*SELECT/i.test(sql) && sql.includes('knox_authtoken'),
  ).length;

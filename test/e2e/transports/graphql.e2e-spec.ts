import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { UseGuards } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { GraphQLModule, Query, Resolver } from '@nestjs/graphql';
import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import { Module } from '@nestjs/common';
import {
  KnoxAuth,
  KnoxMessages,
  KnoxPublic,
  KnoxUser,
  type KnoxToken,
} from '../../../lib/index.js';
import { KnoxGqlGuard } from '../../../lib/transports/graphql/index.js';
import type { TestUser } from '../../support/fixtures.js';
import { createTestApp, login, type TestApp } from '../../support/test-app.js';

/** The Apollo server both test apps mount (one schema: `me`, guarded, and `hello`). */
const apollo = () =>
  GraphQLModule.forRoot<ApolloDriverConfig>({
    driver: ApolloDriver,
    typeDefs: `
      type Me { username: String!, tokenId: String! }
      type Query { me: Me, hello: String! }
    `,
    includeStacktraceInErrorResponses: false,
  });

@Resolver()
@UseGuards(KnoxGqlGuard)
class MeResolver {
  @Query('me')
  me(@KnoxUser() user: TestUser, @KnoxAuth() auth: KnoxToken) {
    return { username: user.username, tokenId: auth.id };
  }

  @KnoxPublic()
  @Query('hello')
  hello(@KnoxUser() user: TestUser | undefined) {
    return `hello ${user?.username ?? 'stranger'}`;
  }
}

@Module({
  imports: [apollo()],
  providers: [MeResolver],
})
class GraphQLApp {}

/** The same guard as APP_GUARD: resolvers and REST routes behind one guard. */
@Resolver()
class OpenResolver {
  @Query('me')
  me(@KnoxUser() user: TestUser) {
    return { username: user.username, tokenId: 'n/a' };
  }

  @KnoxPublic()
  @Query('hello')
  hello() {
    return 'hello';
  }
}

@Module({
  imports: [apollo()],
  providers: [OpenResolver, { provide: APP_GUARD, useClass: KnoxGqlGuard }],
})
class GlobalGuardApp {}

describe('KnoxGqlGuard with Apollo on Express', () => {
  let t: TestApp;
  const query = (q: string, token?: string) => {
    const request = t.http.post('/graphql').send({ query: q });
    return token ? request.set('Authorization', `Token ${token}`) : request;
  };

  beforeAll(async () => {
    t = await createTestApp({ imports: [GraphQLApp] });
    await t.createUser('alice');
  });
  afterAll(() => t.close());

  it('a query with a token sees the user and the token in the resolver', async () => {
    const token = await login(t, 'alice');
    const [row] = await t.tokenRows();
    const res = await query('{ me { username tokenId } }', token);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      data: { me: { username: 'alice', tokenId: row.id } },
    });
  });

  it('without a token: a GraphQL error with the HTTP message and code UNAUTHENTICATED', async () => {
    const res = await query('{ me { username } }');
    expect(res.body.data).toEqual({ me: null });
    expect(res.body.errors).toHaveLength(1);
    expect(res.body.errors[0]).toMatchObject({
      message: KnoxMessages.NOT_PROVIDED,
      path: ['me'],
      extensions: { code: 'UNAUTHENTICATED', status: 401 },
    });
  });

  it('a wrong, malformed or revoked token is UNAUTHENTICATED with its message', async () => {
    const wrong = await query('{ me { username } }', 'x'.repeat(64));
    expect(wrong.body.errors[0]).toMatchObject({
      message: KnoxMessages.INVALID_TOKEN,
      extensions: { code: 'UNAUTHENTICATED' },
    });
    const malformed = await t.http
      .post('/graphql')
      .set('Authorization', 'Token a b')
      .send({ query: '{ me { username } }' });
    expect(malformed.body.errors[0]).toMatchObject({
      message: KnoxMessages.SPACES,
      extensions: { code: 'UNAUTHENTICATED' },
    });
    const token = await login(t, 'alice');
    expect((await query('{ me { username } }', token)).body.data).toEqual({
      me: { username: 'alice' },
    });
    await t.http.post('/auth/logout').set('Authorization', `Token ${token}`);
    const revoked = await query('{ me { username } }', token);
    expect(revoked.body.errors[0]).toMatchObject({
      message: KnoxMessages.INVALID_TOKEN,
      extensions: { code: 'UNAUTHENTICATED' },
    });
  });

  it('a @KnoxPublic query answers without a token', async () => {
    const res = await query('{ hello }');
    expect(res.body).toEqual({ data: { hello: 'hello stranger' } });
  });
});

describe('KnoxGqlGuard as APP_GUARD, for resolvers and REST routes alike', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ imports: [GlobalGuardApp] });
    await t.createUser('alice');
  });
  afterAll(() => t.close());

  it('guards the resolvers, leaves public queries and the login route open', async () => {
    const token = await login(t, 'alice');
    const ok = await t.http
      .post('/graphql')
      .set('Authorization', `Token ${token}`)
      .send({ query: '{ me { username } }' });
    expect(ok.body).toEqual({ data: { me: { username: 'alice' } } });
    const refused = await t.http
      .post('/graphql')
      .send({ query: '{ me { username } }' });
    expect(refused.body.errors[0].extensions.code).toBe('UNAUTHENTICATED');
    const open = await t.http.post('/graphql').send({ query: '{ hello }' });
    expect(open.body).toEqual({ data: { hello: 'hello' } });
  });

  it('on a REST route it answers as KnoxGuard: 401 with WWW-Authenticate', async () => {
    const res = await t.http.get('/global');
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Token');
    expect(res.body.message).toBe(KnoxMessages.NOT_PROVIDED);
    const token = await login(t, 'alice');
    const ok = await t.http
      .get('/global')
      .set('Authorization', `Token ${token}`);
    expect(ok.body).toEqual({ username: 'alice' });
  });
});

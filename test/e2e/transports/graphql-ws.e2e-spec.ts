/**
 * Issue 23, item 9: GraphQL subscriptions over graphql-ws authenticate out of the box, with the
 * token in `connectionParams` (`Authorization`, any case) or in the upgrade request's
 * `Authorization` header; a missing or revoked token is refused with UNAUTHENTICATED, and
 * nothing is logged for it. A real graphql-ws client against a real app.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { AddressInfo } from 'node:net';
import { Module, UseGuards } from '@nestjs/common';
import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import { GraphQLModule, Query, Resolver, Subscription } from '@nestjs/graphql';
import { createClient, type Client, type ExecutionResult } from 'graphql-ws';
import WebSocket from 'ws';
import {
  KnoxAuth,
  KnoxMessages,
  KnoxTokenService,
  KnoxUser,
  type KnoxToken,
} from '../../../lib/index.js';
import { KnoxGqlGuard } from '../../../lib/transports/graphql/index.js';
import type { TestUser } from '../../support/fixtures.js';
import { LogLines } from '../../support/log-lines.js';
import {
  createTestApp,
  login,
  type TestApp,
  type TestAppOptions,
} from '../../support/test-app.js';

@Resolver()
@UseGuards(KnoxGqlGuard)
class WhoamiResolver {
  @Query('me')
  me(@KnoxUser() user: TestUser) {
    return user.username;
  }

  @Subscription('whoami')
  async *whoami(@KnoxUser() user: TestUser, @KnoxAuth() auth: KnoxToken) {
    yield { whoami: `${user.username} ${auth.id}` };
  }
}

@Module({
  imports: [
    GraphQLModule.forRoot<ApolloDriverConfig>({
      driver: ApolloDriver,
      typeDefs:
        'type Query { me: String } type Subscription { whoami: String }',
      subscriptions: { 'graphql-ws': true },
      includeStacktraceInErrorResponses: false,
    }),
  ],
  providers: [WhoamiResolver],
})
class SubscriptionsApp {}

/** The same app with the `context` factory docs/transports-graphql.md shows. */
@Module({
  imports: [
    GraphQLModule.forRoot<ApolloDriverConfig>({
      driver: ApolloDriver,
      typeDefs:
        'type Query { me: String } type Subscription { whoami: String }',
      subscriptions: { 'graphql-ws': true },
      includeStacktraceInErrorResponses: false,
      context: (ctx: { req?: unknown }) =>
        ctx.req ? { req: ctx.req, own: true } : { req: ctx, own: true },
    }),
  ],
  providers: [WhoamiResolver],
})
class OwnContextApp {}

/** A `ws` WebSocket that sends `headers` with its upgrade request. */
function withHeaders(headers: Record<string, string>) {
  return class extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, { headers });
    }
  };
}

interface SubscribeOptions {
  connectionParams?: Record<string, unknown>;
  headers?: Record<string, string>;
}

/** graphql-ws clients of a describe, disposed after it. */
class Subscriber {
  url = '';
  private readonly clients: Client[] = [];

  /** Connections the clients of this describe opened. */
  connections = 0;

  /**
   * A client on a new connection. Lazy by default: it connects on its first subscription and
   * closes after its last; `lazy: false` keeps one connection open until disposed.
   */
  client(options: SubscribeOptions & { lazy?: boolean } = {}): Client {
    const client = createClient({
      url: this.url,
      webSocketImpl: withHeaders(options.headers ?? {}),
      connectionParams: options.connectionParams,
      retryAttempts: 0,
      lazy: options.lazy ?? true,
      on: { connected: () => this.connections++ },
    });
    this.clients.push(client);
    return client;
  }

  /** Subscribes to `whoami` on `client`; resolves with what the server sent once it completes. */
  once(client: Client): Promise<ExecutionResult[]> {
    return new Promise((resolve, reject) => {
      const results: ExecutionResult[] = [];
      client.subscribe(
        { query: 'subscription { whoami }' },
        {
          next: (value) => results.push(value as ExecutionResult),
          error: reject,
          complete: () => resolve(results),
        },
      );
    });
  }

  /** Subscribes to `whoami` on a new connection. */
  subscribe(options: SubscribeOptions): Promise<ExecutionResult[]> {
    return this.once(this.client(options));
  }

  async dispose(): Promise<void> {
    await Promise.all(this.clients.map((client) => client.dispose()));
  }
}

/** Boots the subscriptions app and listens (graphql-ws needs a real server). */
async function bootListening(
  log: LogLines,
  subscriber: Subscriber,
  knox: TestAppOptions['knox'] = {},
  app: TestAppOptions['imports'] = [SubscriptionsApp],
): Promise<TestApp> {
  const t = await createTestApp({
    imports: app,
    configureApp: (app) => app.useLogger(log),
    knox,
  });
  await t.app.listen(0, '127.0.0.1');
  subscriber.url = `ws://127.0.0.1:${(t.app.getHttpServer().address() as AddressInfo).port}/graphql`;
  await t.createUser('alice');
  log.reset();
  return t;
}

describe('KnoxGqlGuard on graphql-ws subscriptions (issue 23 item 9)', () => {
  const log = new LogLines();
  const ws = new Subscriber();
  let t: TestApp;
  beforeAll(async () => {
    t = await bootListening(log, ws);
  });
  afterAll(async () => {
    await ws.dispose();
    await t.close();
  });
  const subscribe = (options: SubscribeOptions) => ws.subscribe(options);

  it('a token in connectionParams: the subscription sees the user and the token', async () => {
    const token = await login(t, 'alice');
    const [row] = await t.tokenRows();
    for (const key of ['Authorization', 'authorization', 'AUTHORIZATION']) {
      expect(
        await subscribe({ connectionParams: { [key]: `Token ${token}` } }),
      ).toEqual([{ data: { whoami: `alice ${row.id}` } }]);
    }
  });

  it("a token in the upgrade request's Authorization header", async () => {
    const token = await login(t, 'alice');
    expect(
      await subscribe({ headers: { Authorization: `Token ${token}` } }),
    ).toEqual([{ data: { whoami: expect.stringMatching(/^alice /) } }]);
  });

  it('connectionParams win over the upgrade header', async () => {
    const token = await login(t, 'alice');
    const refused = await subscribe({
      connectionParams: { Authorization: 'Token ' + 'f'.repeat(64) },
      headers: { Authorization: `Token ${token}` },
    });
    expect(refused[0].errors?.[0].message).toBe(KnoxMessages.INVALID_TOKEN);
  });

  it('no token, a wrong one, a revoked one: UNAUTHENTICATED, and no log line', async () => {
    const token = await login(t, 'alice');
    await t.http.post('/auth/logout').set('Authorization', `Token ${token}`);
    log.reset();
    const cases = [
      [{}, KnoxMessages.NOT_PROVIDED],
      [
        { connectionParams: { Authorization: `Token ${'f'.repeat(64)}` } },
        KnoxMessages.INVALID_TOKEN,
      ],
      [
        { connectionParams: { authorization: `Token ${token}` } },
        KnoxMessages.INVALID_TOKEN,
      ],
      [
        { headers: { Authorization: `Token ${token}` } },
        KnoxMessages.INVALID_TOKEN,
      ],
    ] as const;
    for (const [options, message] of cases) {
      const results = await subscribe(options);
      expect(results).toHaveLength(1);
      expect(results[0].data ?? null).toBeNull();
      expect(results[0].errors).toHaveLength(1);
      expect(results[0].errors?.[0]).toMatchObject({
        message,
        extensions: { code: 'UNAUTHENTICATED', status: 401 },
      });
    }
    expect(log.lines()).toBe(0);
  });

  it('a token revoked between two subscriptions of one connection: the second is refused', async () => {
    const token = await login(t, 'alice');
    ws.connections = 0;
    const client = ws.client({
      connectionParams: { Authorization: `Token ${token}` },
      lazy: false,
    });
    const once = () => ws.once(client);
    expect((await once())[0].data).toEqual({
      whoami: expect.stringMatching(/^alice /),
    });
    await t.http.post('/auth/logout').set('Authorization', `Token ${token}`);
    expect((await once())[0].errors?.[0]).toMatchObject({
      message: KnoxMessages.INVALID_TOKEN,
      extensions: { code: 'UNAUTHENTICATED' },
    });
    // Both on the one connection: its authentication is not reused after the revocation.
    expect(ws.connections).toBe(1);
  });

  it('queries over HTTP still read the HTTP request', async () => {
    const token = await login(t, 'alice');
    const res = await t.http
      .post('/graphql')
      .set('Authorization', `Token ${token}`)
      .send({ query: '{ me }' });
    expect(res.body).toEqual({ data: { me: 'alice' } });
  });
});

describe('KnoxGqlGuard on graphql-ws with the cookie transport on', () => {
  const log = new LogLines();
  const ws = new Subscriber();
  let t: TestApp;
  beforeAll(async () => {
    t = await bootListening(log, ws, { cookie: true });
  });
  afterAll(async () => {
    await ws.dispose();
    await t.close();
  });
  const subscribe = (options: SubscribeOptions) => ws.subscribe(options);
  const url = () => ws.url;

  it('a token cookie on the upgrade request passes the Origin check (cross-site WebSocket hijacking)', async () => {
    const alice = (await t.dataSource.query(
      `SELECT * FROM knox_test_user WHERE username = 'alice'`,
    )) as TestUser[];
    const issued = await t.app.get(KnoxTokenService).create(alice[0]);
    const cookie = `__Host-knox_token=${issued.token}`;
    const own = url().replace('ws:', 'http:').replace('/graphql', '');
    expect(
      await subscribe({ headers: { Cookie: cookie, Origin: own } }),
    ).toEqual([{ data: { whoami: expect.stringMatching(/^alice /) } }]);
    log.reset();
    const evil = await subscribe({
      headers: { Cookie: cookie, Origin: 'https://evil.example' },
    });
    expect(evil[0].errors?.[0]).toMatchObject({
      message: KnoxMessages.CSRF_UNTRUSTED_ORIGIN,
      extensions: { code: 'FORBIDDEN', status: 403 },
    });
    const none = await subscribe({ headers: { Cookie: cookie } });
    expect(none[0].errors?.[0]).toMatchObject({
      message: KnoxMessages.CSRF_NO_ORIGIN,
      extensions: { code: 'FORBIDDEN', status: 403 },
    });
    expect(log.lines()).toBe(0);
  });
});

describe("KnoxGqlGuard on graphql-ws with the app's own context factory (docs)", () => {
  const log = new LogLines();
  const ws = new Subscriber();
  let t: TestApp;
  beforeAll(async () => {
    t = await bootListening(log, ws, {}, [OwnContextApp]);
  });
  afterAll(async () => {
    await ws.dispose();
    await t.close();
  });

  it('subscriptions and HTTP queries authenticate; no token is refused', async () => {
    const token = await login(t, 'alice');
    expect(
      await ws.subscribe({
        connectionParams: { Authorization: `Token ${token}` },
      }),
    ).toEqual([{ data: { whoami: expect.stringMatching(/^alice /) } }]);
    expect((await ws.subscribe({}))[0].errors?.[0]).toMatchObject({
      message: KnoxMessages.NOT_PROVIDED,
      extensions: { code: 'UNAUTHENTICATED' },
    });
    const res = await t.http
      .post('/graphql')
      .set('Authorization', `Token ${token}`)
      .send({ query: '{ me }' });
    expect(res.body).toEqual({ data: { me: 'alice' } });
    expect(log.lines()).toBe(0);
  });
});

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { AddressInfo } from 'node:net';
import { Controller, Get, Module, Req, UseGuards } from '@nestjs/common';
import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import { GraphQLModule, Query, Resolver } from '@nestjs/graphql';
import { AuthGuard } from '@nestjs/passport';
import {
  SubscribeMessage,
  WebSocketGateway,
  type OnGatewayInit,
} from '@nestjs/websockets';
import type { Namespace } from 'socket.io';
import type { io } from 'socket.io-client';
import { SocketIoClients } from '../../support/socket-io.js';
import { KnoxMessages, KnoxUser } from '../../../lib/index.js';
import { KnoxGqlGuard } from '../../../lib/transports/graphql/index.js';
import { KnoxStrategy } from '../../../lib/transports/passport/index.js';
import { KnoxWsGuard } from '../../../lib/transports/websocket/index.js';
import type { TestUser } from '../../support/fixtures.js';
import { DbOutage } from '../../support/db-outage.js';
import { createTestApp, login, type TestApp } from '../../support/test-app.js';

@WebSocketGateway({ namespace: 'outage' })
@UseGuards(KnoxWsGuard)
class OutageGateway implements OnGatewayInit {
  constructor(private readonly knoxWs: KnoxWsGuard) {}

  afterInit(server: Namespace) {
    server.use(this.knoxWs.socketIoMiddleware());
  }

  @SubscribeMessage('whoami')
  whoami(@KnoxUser() user: TestUser) {
    return user.username;
  }
}

@Resolver()
@UseGuards(KnoxGqlGuard)
class OutageResolver {
  @Query('me')
  me(@KnoxUser() user: TestUser) {
    return user.username;
  }
}

@Controller('outage')
class OutageController {
  @UseGuards(AuthGuard('knox'))
  @Get('passport')
  me(@Req() request: { user: TestUser }) {
    return { username: request.user.username };
  }
}

@Module({
  imports: [
    GraphQLModule.forRoot<ApolloDriverConfig>({
      driver: ApolloDriver,
      typeDefs: 'type Query { me: String }',
      includeStacktraceInErrorResponses: false,
    }),
  ],
  controllers: [OutageController],
  providers: [OutageGateway, OutageResolver, KnoxWsGuard, KnoxStrategy],
})
class OutageModule {}

/**
 * The database goes away for real (a TCP proxy between the app and the server is cut; on SQLite
 * another connection holds the file's exclusive lock past the busy timeout): every
 * transport answers the outage as HTTP does, a 503 with its message, never a 401 (clients keep
 * their tokens) and never an "Internal server error".
 */
describe('transports during a database outage', () => {
  let t: TestApp;
  let outage: DbOutage;
  let url: string;
  let token: string;
  const clients = new SocketIoClients();
  const open = (options: Parameters<typeof io>[1]) =>
    clients.open(`${url}/outage`, options);

  beforeAll(async () => {
    outage = await DbOutage.start();
    t = await createTestApp({
      imports: [OutageModule],
      // A cut refuses connections at once (ECONNREFUSED), so the connect timeout (5 s) only has
      // to let the boot through a slow (loaded, embedded) database; 1 s was not always enough.
      ...outage.appOptions(5000),
    });
    await t.app.listen(0, '127.0.0.1');
    url = `http://127.0.0.1:${(t.app.getHttpServer().address() as AddressInfo).port}`;
    await t.createUser('alice');
    token = await login(t, 'alice');
  });
  afterAll(async () => {
    clients.closeAll();
    await outage?.restore().catch(() => undefined);
    await t?.close();
    await outage?.close();
  });

  it('socket.io messages and connections, GraphQL and passport all answer 503', async () => {
    const socket = open({ auth: { token } });
    await new Promise<void>((resolve, reject) => {
      socket.on('connect', () => resolve());
      socket.on('connect_error', reject);
    });
    expect(await socket.emitWithAck('whoami', {})).toBe('alice');

    await outage.cut(t.dataSource);

    const exception = new Promise((resolve) =>
      socket.once('exception', resolve),
    );
    socket.emit('whoami', {});
    expect(await exception).toEqual({
      status: 503,
      message: KnoxMessages.UNAVAILABLE,
    });

    const refused = await new Promise<Error & { data?: unknown }>(
      (resolve, reject) => {
        const late = open({ auth: { token } });
        late.on('connect', () => reject(new Error('connected')));
        late.on('connect_error', resolve);
      },
    );
    expect(refused.data).toEqual({
      status: 503,
      message: KnoxMessages.UNAVAILABLE,
    });

    const gql = await t.http
      .post('/graphql')
      .set('Authorization', `Token ${token}`)
      .send({ query: '{ me }' });
    expect(gql.body.errors[0]).toMatchObject({
      message: KnoxMessages.UNAVAILABLE,
      extensions: { code: 'SERVICE_UNAVAILABLE', status: 503 },
    });

    const passport = await t.http
      .get('/outage/passport')
      .set('Authorization', `Token ${token}`);
    expect(passport.status).toBe(503);
    expect(passport.body.message).toBe(KnoxMessages.UNAVAILABLE);
  });
});

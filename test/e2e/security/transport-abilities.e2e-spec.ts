/**
 * Planted-bug pass of issue 23: with the ability check skipped outside HTTP (KnoxGuard.admit
 * checking only `http` contexts), every WebSocket and GraphQL test still passed. A socket.io
 * message handler and a GraphQL resolver with `@KnoxAbilities` refuse a token without the
 * ability (403, the HTTP message) and serve one that holds it.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { AddressInfo } from 'node:net';
import { Module, UseGuards } from '@nestjs/common';
import { SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import { GraphQLModule, Query, Resolver } from '@nestjs/graphql';
import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import type { Socket as ClientSocket } from 'socket.io-client';
import {
  KnoxAbilities,
  KnoxAnyAbility,
  KnoxMessages,
  KnoxTokenService,
} from '../../../lib/index.js';
import { KnoxWsGuard } from '../../../lib/transports/websocket/index.js';
import { KnoxGqlGuard } from '../../../lib/transports/graphql/index.js';
import { SocketIoClients } from '../../support/socket-io.js';
import { createTestApp, type TestApp } from '../../support/test-app.js';

@WebSocketGateway({ namespace: 'posts' })
@UseGuards(KnoxWsGuard)
class PostsGateway {
  @SubscribeMessage('publish')
  @KnoxAbilities('posts:write')
  publish() {
    return 'published';
  }

  @SubscribeMessage('read')
  @KnoxAnyAbility('posts:read', 'posts:write')
  read() {
    return 'read';
  }
}

@Resolver()
@UseGuards(KnoxGqlGuard)
class PostsResolver {
  @Query('publish')
  @KnoxAbilities('posts:write')
  publish() {
    return 'published';
  }
}

@Module({
  imports: [
    GraphQLModule.forRoot<ApolloDriverConfig>({
      driver: ApolloDriver,
      typeDefs: 'type Query { publish: String }',
      includeStacktraceInErrorResponses: false,
    }),
  ],
  providers: [PostsGateway, PostsResolver],
})
class TransportsModule {}

function ask(
  socket: ClientSocket,
  event: string,
): Promise<{ ack?: unknown; exception?: unknown }> {
  return new Promise((resolve) => {
    socket.once('exception', (exception: unknown) => resolve({ exception }));
    socket.emit(event, {}, (ack: unknown) => resolve({ ack }));
  });
}

describe('abilities on WebSocket and GraphQL', () => {
  let t: TestApp;
  let url: string;
  let reader: string;
  let writer: string;
  const clients = new SocketIoClients();

  beforeAll(async () => {
    t = await createTestApp({ imports: [TransportsModule] });
    await t.app.listen(0, '127.0.0.1');
    url = `http://127.0.0.1:${(t.app.getHttpServer().address() as AddressInfo).port}`;
    const alice = await t.createUser('alice');
    const service = t.app.get(KnoxTokenService);
    reader = (await service.create(alice, { abilities: ['posts:read'] })).token;
    writer = (await service.create(alice, { abilities: ['posts:write'] }))
      .token;
  });
  afterAll(async () => {
    clients.closeAll();
    await t.close();
  });

  it('socket.io: a message needing an ability the token lacks is refused with 403', async () => {
    const socket = clients.open(`${url}/posts`, { auth: { token: reader } });
    await new Promise<void>((resolve, reject) => {
      socket.on('connect', () => resolve());
      socket.on('connect_error', reject);
    });
    expect(await ask(socket, 'publish')).toEqual({
      exception: {
        status: 403,
        message: KnoxMessages.MISSING_ABILITIES(['posts:write']),
      },
    });
    expect(await ask(socket, 'read')).toEqual({ ack: 'read' });
    const other = clients.open(`${url}/posts`, { auth: { token: writer } });
    await new Promise<void>((resolve) => other.on('connect', () => resolve()));
    expect(await ask(other, 'publish')).toEqual({ ack: 'published' });
  });

  it('GraphQL: a field needing an ability the token lacks is refused with the 403 message', async () => {
    const query = (token: string) =>
      t.http
        .post('/graphql')
        .set('Authorization', `Token ${token}`)
        .send({ query: '{ publish }' });
    const refused = await query(reader);
    expect(refused.body.data).toEqual({ publish: null });
    expect(refused.body.errors).toHaveLength(1);
    expect(refused.body.errors[0].message).toBe(
      KnoxMessages.MISSING_ABILITIES(['posts:write']),
    );
    expect((await query(writer)).body).toEqual({
      data: { publish: 'published' },
    });
  });
});

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Module, UseGuards } from '@nestjs/common';
import {
  ConnectedSocket,
  SubscribeMessage,
  WebSocketGateway,
  WebSocketServer,
  type OnGatewayConnection,
  type OnGatewayInit,
} from '@nestjs/websockets';
import { WsAdapter } from '@nestjs/platform-ws';
import type { Namespace, Socket } from 'socket.io';
import { io, type Socket as ClientSocket } from 'socket.io-client';
import { SocketIoClients } from '../../support/socket-io.js';
import WebSocket from 'ws';
import {
  KnoxAuth,
  KnoxMessages,
  KnoxTokenService,
  KnoxUser,
  type KnoxToken,
} from '../../../lib/index.js';
import { KnoxWsGuard } from '../../../lib/transports/websocket/index.js';
import type { TestUser } from '../../support/fixtures.js';
import { createTestApp, login, type TestApp } from '../../support/test-app.js';
import { sql } from '../../support/test-db.js';

/** Messages are checked by the guard only: a revoked token is refused on its next message. */
@WebSocketGateway({ namespace: 'guarded' })
@UseGuards(KnoxWsGuard)
class GuardedGateway {
  @SubscribeMessage('whoami')
  whoami(@KnoxUser() user: TestUser, @KnoxAuth() auth: KnoxToken) {
    return { username: user.username, tokenId: auth.id };
  }
}

/** Reads the token from `?token=` too (the opt-in). */
class QueryWsGuard extends KnoxWsGuard {
  protected override readonly queryParam = 'token';
}

@WebSocketGateway({ namespace: 'query' })
@UseGuards(QueryWsGuard)
class QueryGateway {
  @SubscribeMessage('whoami')
  whoami(@KnoxUser() user: TestUser) {
    return user.username;
  }
}

/** Refuses connections without a valid token; the library disconnects sockets of revoked tokens. */
@WebSocketGateway({ namespace: 'live' })
@UseGuards(KnoxWsGuard)
class LiveGateway implements OnGatewayInit {
  @WebSocketServer() server: Namespace;

  constructor(private readonly knoxWs: KnoxWsGuard) {}

  afterInit(server: Namespace) {
    server.use(this.knoxWs.socketIoMiddleware());
  }

  @SubscribeMessage('whoami')
  whoami(@KnoxUser() user: TestUser, @ConnectedSocket() socket: Socket) {
    return { username: user.username, socketId: socket.id };
  }
}

@Module({
  providers: [GuardedGateway, QueryGateway, LiveGateway, KnoxWsGuard],
})
class SocketIoModule {}

function portOf(t: TestApp): number {
  return (t.app.getHttpServer().address() as AddressInfo).port;
}

function connectError(
  socket: ClientSocket,
): Promise<Error & { data?: unknown }> {
  return new Promise((resolve, reject) => {
    socket.on('connect', () => reject(new Error('connected')));
    socket.on('connect_error', resolve);
  });
}

function connected(socket: ClientSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.on('connect', () => resolve());
    socket.on('connect_error', reject);
  });
}

/** Emits and resolves the acknowledgement, or the `exception` event the server answers. */
function ask(
  socket: ClientSocket,
  event: string,
): Promise<{ ack?: unknown; exception?: unknown }> {
  return new Promise((resolve) => {
    socket.once('exception', (exception: unknown) => resolve({ exception }));
    socket.emit(event, {}, (ack: unknown) => resolve({ ack }));
  });
}

describe('KnoxWsGuard on socket.io', () => {
  let t: TestApp;
  let url: string;
  const clients = new SocketIoClients();
  const open = (
    namespace: string,
    options: Parameters<typeof io>[1] = {},
  ): ClientSocket => clients.open(`${url}/${namespace}`, options);

  beforeAll(async () => {
    t = await createTestApp({ imports: [SocketIoModule] });
    await t.app.listen(0, '127.0.0.1');
    url = `http://127.0.0.1:${portOf(t)}`;
    await t.createUser('alice');
    await t.createUser('bob');
  });
  afterAll(async () => {
    clients.closeAll();
    await t.close();
  });

  it('a token in handshake auth.token authenticates every message', async () => {
    const token = await login(t, 'alice');
    const socket = open('guarded', { auth: { token } });
    await connected(socket);
    const [row] = await t.tokenRows();
    expect(await ask(socket, 'whoami')).toEqual({
      ack: { username: 'alice', tokenId: row.id },
    });
  });

  it('auth.token may carry its scheme (`Token <token>`, `bearer <token>`), as many socket.io examples write it', async () => {
    const token = await login(t, 'alice');
    for (const value of [`Token ${token}`, `bearer ${token}`]) {
      const socket = open('guarded', { auth: { token: value } });
      await connected(socket);
      expect(await ask(socket, 'whoami')).toEqual({
        ack: expect.objectContaining({ username: 'alice' }),
      });
    }
    const other = open('guarded', { auth: { token: `Basic ${token}` } });
    await connected(other);
    expect(await ask(other, 'whoami')).toEqual({
      exception: { status: 401, message: KnoxMessages.INVALID_TOKEN },
    });
  });

  it('a token in the Authorization header of the handshake authenticates', async () => {
    const token = await login(t, 'bob');
    const socket = open('guarded', {
      extraHeaders: { Authorization: `Token ${token}` },
    });
    await connected(socket);
    expect((await ask(socket, 'whoami')).ack).toMatchObject({
      username: 'bob',
    });
  });

  it('a message without a token is refused with the HTTP message, as a 401 payload', async () => {
    const socket = open('guarded');
    await connected(socket);
    expect(await ask(socket, 'whoami')).toEqual({
      exception: { status: 401, message: KnoxMessages.NOT_PROVIDED },
    });
  });

  it('a bad token is refused: wrong value, non-string auth.token, malformed header', async () => {
    const wrong = open('guarded', { auth: { token: 'x'.repeat(64) } });
    await connected(wrong);
    expect(await ask(wrong, 'whoami')).toEqual({
      exception: { status: 401, message: KnoxMessages.INVALID_TOKEN },
    });
    const typed = open('guarded', { auth: { token: 42 } });
    await connected(typed);
    expect(await ask(typed, 'whoami')).toEqual({
      exception: { status: 401, message: KnoxMessages.INVALID_TOKEN },
    });
    const header = open('guarded', {
      extraHeaders: { Authorization: 'Token a b' },
    });
    await connected(header);
    expect(await ask(header, 'whoami')).toEqual({
      exception: { status: 401, message: KnoxMessages.SPACES },
    });
  });

  it('the query parameter is read only by a guard that opts in', async () => {
    const token = await login(t, 'alice');
    const plain = open('guarded', { query: { token } });
    await connected(plain);
    expect(await ask(plain, 'whoami')).toEqual({
      exception: { status: 401, message: KnoxMessages.NOT_PROVIDED },
    });
    const optedIn = open('query', { query: { token } });
    await connected(optedIn);
    expect(await ask(optedIn, 'whoami')).toEqual({ ack: 'alice' });
  });

  it('a token revoked while the socket is open is refused on its next message', async () => {
    const token = await login(t, 'alice');
    const socket = open('guarded', { auth: { token } });
    await connected(socket);
    expect((await ask(socket, 'whoami')).ack).toMatchObject({
      username: 'alice',
    });
    const logout = await t.http
      .post('/auth/logout')
      .set('Authorization', `Token ${token}`);
    expect(logout.status).toBe(204);
    expect(await ask(socket, 'whoami')).toEqual({
      exception: { status: 401, message: KnoxMessages.INVALID_TOKEN },
    });
    expect(socket.connected).toBe(true);
  });

  it('a token that expires while the socket is open is refused on its next message', async () => {
    const token = await login(t, 'alice');
    const socket = open('guarded', { auth: { token } });
    await connected(socket);
    const { ack } = await ask(socket, 'whoami');
    const { tokenId } = ack as { tokenId: string };
    t.clock.advance(10 * 60 * 60 * 1000 + 1);
    expect(await ask(socket, 'whoami')).toEqual({
      exception: { status: 401, message: KnoxMessages.INVALID_TOKEN },
    });
    // An expired token is deleted when presented, as over HTTP.
    const rows = await t.tokenRows();
    expect(rows.map((row) => row.id)).not.toContain(tokenId);
  });

  it('an inactive user is refused on the next message', async () => {
    const token = await login(t, 'bob');
    const socket = open('guarded', { auth: { token } });
    await connected(socket);
    expect((await ask(socket, 'whoami')).ack).toBeDefined();
    await t.dataSource.query(
      sql(
        `UPDATE knox_test_user SET "isActive" = false WHERE username = 'bob'`,
      ),
    );
    expect(await ask(socket, 'whoami')).toEqual({
      exception: { status: 401, message: KnoxMessages.USER_INACTIVE },
    });
    await t.dataSource.query(
      sql(`UPDATE knox_test_user SET "isActive" = true WHERE username = 'bob'`),
    );
  });

  it('the middleware refuses the connection: connect_error with the payload in err.data', async () => {
    const missing = await connectError(open('live'));
    expect(missing.message).toBe(KnoxMessages.NOT_PROVIDED);
    expect(missing.data).toEqual({
      status: 401,
      message: KnoxMessages.NOT_PROVIDED,
    });
    const wrong = await connectError(
      open('live', { auth: { token: 'y'.repeat(64) } }),
    );
    expect(wrong.data).toEqual({
      status: 401,
      message: KnoxMessages.INVALID_TOKEN,
    });
  });

  it('a revocation disconnects the sockets of that token only (no app code)', async () => {
    const revoked = await login(t, 'alice');
    const kept = await login(t, 'alice');
    const a = open('live', { auth: { token: revoked } });
    const b = open('live', { auth: { token: kept } });
    await Promise.all([connected(a), connected(b)]);
    expect((await ask(a, 'whoami')).ack).toMatchObject({ username: 'alice' });
    const disconnected = new Promise<string>((resolve) =>
      a.on('disconnect', resolve),
    );
    const logout = await t.http
      .post('/auth/logout')
      .set('Authorization', `Token ${revoked}`);
    expect(logout.status).toBe(204);
    expect(await disconnected).toBe('io server disconnect');
    expect(b.connected).toBe(true);
    expect((await ask(b, 'whoami')).ack).toMatchObject({ username: 'alice' });
  });

  it('each message is authenticated again: one token lookup per message', async () => {
    const token = await login(t, 'alice');
    const socket = open('guarded', { auth: { token } });
    await connected(socket);
    t.recorder.reset();
    for (let i = 0; i < 3; i++) {
      expect((await ask(socket, 'whoami')).ack).toBeDefined();
    }
    const lookups = t.recorder.statements.filter((sql) => /^SELECT/i.test(sql));
    expect(lookups).toHaveLength(3);
  });
});

/** With `ws`, the handshake is seen only in handleConnection. */
@WebSocketGateway()
@UseGuards(KnoxWsGuard)
class WsGateway implements OnGatewayConnection {
  constructor(private readonly knoxWs: KnoxWsGuard) {}

  async handleConnection(client: WebSocket, request: IncomingMessage) {
    await this.knoxWs.authenticateConnection(client, request);
  }

  @SubscribeMessage('whoami')
  whoami(@KnoxUser() user: TestUser) {
    return { event: 'whoami', data: user.username };
  }
}

@Module({ providers: [WsGateway, KnoxWsGuard] })
class WsModule {}

describe('KnoxWsGuard on ws (@nestjs/platform-ws)', () => {
  let t: TestApp;
  let url: string;
  const clients: WebSocket[] = [];

  beforeAll(async () => {
    t = await createTestApp({
      imports: [WsModule],
      configureApp: (app) => app.useWebSocketAdapter(new WsAdapter(app)),
    });
    await t.app.listen(0, '127.0.0.1');
    url = `ws://127.0.0.1:${portOf(t)}`;
    await t.createUser('alice');
  });
  afterAll(async () => {
    clients.forEach((client) => client.terminate());
    await t.close();
  });

  /** Opens a client and collects its messages and its close. */
  const open = (headers: Record<string, string> = {}) => {
    const client = new WebSocket(url, { headers });
    clients.push(client);
    const messages: unknown[] = [];
    const waiting: ((message: unknown) => void)[] = [];
    client.on('message', (data) => {
      const message = JSON.parse(String(data));
      const next = waiting.shift();
      if (next) next(message);
      else messages.push(message);
    });
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      client.on('close', (code, reason) =>
        resolve({ code, reason: String(reason) }),
      ),
    );
    const opened = new Promise<void>((resolve, reject) => {
      client.on('open', () => resolve());
      client.on('error', reject);
    });
    const next = () =>
      messages.length > 0
        ? Promise.resolve(messages.shift())
        : new Promise<unknown>((resolve) => waiting.push(resolve));
    const send = (event: string) =>
      client.send(JSON.stringify({ event, data: {} }));
    return { client, opened, closed, next, send };
  };

  it('a valid token connects and every message is answered', async () => {
    const token = await login(t, 'alice');
    const c = open({ Authorization: `Token ${token}` });
    await c.opened;
    c.send('whoami');
    expect(await c.next()).toEqual({ event: 'whoami', data: 'alice' });
    c.send('whoami');
    expect(await c.next()).toEqual({ event: 'whoami', data: 'alice' });
  });

  it('no token: the payload is sent and the connection closed with 4401', async () => {
    const c = open();
    expect(await c.next()).toEqual({
      event: 'exception',
      data: { status: 401, message: KnoxMessages.NOT_PROVIDED },
    });
    expect(await c.closed).toEqual({
      code: 4401,
      reason: KnoxMessages.NOT_PROVIDED,
    });
  });

  it('a wrong token is refused at connection time', async () => {
    const c = open({ Authorization: `Token ${'z'.repeat(64)}` });
    expect(await c.next()).toEqual({
      event: 'exception',
      data: { status: 401, message: KnoxMessages.INVALID_TOKEN },
    });
    expect((await c.closed).code).toBe(4401);
  });

  it('a token revoked mid-connection is refused on its next message', async () => {
    const token = await login(t, 'alice');
    const c = open({ Authorization: `Token ${token}` });
    await c.opened;
    c.send('whoami');
    expect(await c.next()).toEqual({ event: 'whoami', data: 'alice' });
    const logout = await t.http
      .post('/auth/logout')
      .set('Authorization', `Token ${token}`);
    expect(logout.status).toBe(204);
    c.send('whoami');
    expect(await c.next()).toEqual({
      event: 'exception',
      data: { status: 401, message: KnoxMessages.INVALID_TOKEN },
    });
  });
});

@Module({ providers: [GuardedGateway] })
class CookieSocketModule {}

describe('KnoxWsGuard with the cookie transport: the handshake passes the Origin check', () => {
  let t: TestApp;
  let url: string;
  let cookie: string;
  const clients = new SocketIoClients();
  const open = (headers: Record<string, string>) =>
    clients.open(`${url}/guarded`, { extraHeaders: headers });

  beforeAll(async () => {
    t = await createTestApp({
      imports: [CookieSocketModule],
      knox: { cookie: true },
    });
    await t.app.listen(0, '127.0.0.1');
    url = `http://127.0.0.1:${portOf(t)}`;
    const alice = await t.createUser('alice');
    const issued = await t.app.get(KnoxTokenService).create(alice);
    cookie = `__Host-knox_token=${issued.token}`;
  });
  afterAll(async () => {
    clients.closeAll();
    await t.close();
  });

  it('a cookie handshake from the same origin is accepted', async () => {
    const socket = open({ Cookie: cookie, Origin: url });
    await connected(socket);
    expect((await ask(socket, 'whoami')).ack).toMatchObject({
      username: 'alice',
    });
  });

  it('a cookie handshake from another origin (cross-site WebSocket hijacking) is refused with 403', async () => {
    const evil = open({ Cookie: cookie, Origin: 'https://evil.example' });
    await connected(evil);
    expect(await ask(evil, 'whoami')).toEqual({
      exception: { status: 403, message: KnoxMessages.CSRF_UNTRUSTED_ORIGIN },
    });
    const none = open({ Cookie: cookie });
    await connected(none);
    expect(await ask(none, 'whoami')).toEqual({
      exception: { status: 403, message: KnoxMessages.CSRF_NO_ORIGIN },
    });
  });
});

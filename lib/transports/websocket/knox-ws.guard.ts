import {
  Inject,
  Injectable,
  Optional,
  UnauthorizedException,
  type ExecutionContext,
} from '@nestjs/common';
import { WsException } from '@nestjs/websockets';
import type { IncomingMessage } from 'node:http';
import { KnoxCache } from '../../cache/knox-cache.js';
import { KnoxGuard } from '../../guard/knox.guard.js';
import { KnoxClock } from '../../knox-clock.js';
import { KnoxMessages } from '../../knox.messages.js';
import type { KnoxAuthResult } from '../../knox-token.service.js';
import type { KnoxRequest } from '../../knox-request.js';
import { clientInfoOf } from '../../knox-request.js';
import { knoxErrorPayload } from '../knox-transport-errors.js';
import {
  knoxWsConnectionsOf,
  type KnoxWsConnections,
} from './knox-ws-connections.js';
import { knoxWsRequestOf, setKnoxWsRequest } from './knox-ws-request.js';

/**
 * The method the connection's view reports. Browsers open WebSockets cross-origin with their
 * cookies (cross-site WebSocket hijacking), so a handshake authenticated by the token cookie
 * must pass the same Origin check as an unsafe HTTP method; this is not a safe method.
 */
const HANDSHAKE = 'WEBSOCKET';

/** How long a socket.io socket that passed the middleware may take to connect (ms). */
const PENDING_LIMIT = 10_000;

/** What a socket.io `Socket` carries of its handshake. */
interface SocketIoHandshake {
  headers: Record<string, string | string[] | undefined>;
  address?: string;
  query?: Record<string, unknown>;
  auth?: Record<string, unknown>;
}

/** A socket.io `Socket` or a `ws` `WebSocket`, as far as the guard needs them. */
interface WsClient {
  handshake?: SocketIoHandshake;
  emit?: (event: string, payload: unknown) => unknown;
  disconnect?: (close?: boolean) => unknown;
  send?: (data: string) => unknown;
  close?: (code?: number, reason?: string) => unknown;
  readyState?: number;
}

/** The 401-like payload of a refused message or connection: `{ status, message }`. */
export interface KnoxWsErrorPayload {
  /** The HTTP status the same failure has over HTTP: 401, or 503 for a database outage. */
  status: number;
  /** The message the same failure has over HTTP (see `KnoxMessages`). */
  message: string;
}

/**
 * Authenticates WebSocket messages (socket.io through `@nestjs/platform-socket.io`, or `ws`
 * through `@nestjs/platform-ws`) with the same tokens, checks and messages as {@link KnoxGuard}.
 *
 * The token is read, in this order, from the socket.io handshake `auth.token`, the handshake's
 * `Authorization: Token …` header, and — only when a subclass sets {@link queryParam} — a query
 * parameter of the handshake URL (URLs end up in access logs: prefer the other two). The token is
 * authenticated again on every message. A connection authenticated at its handshake (below) is
 * closed by the library when its token is revoked, deleted or expires, its user is refused, or a
 * message is refused: at once for this instance's own revocations, and for every writer's with
 * `cache: true` and a bus. Failures are a `WsException` whose payload is `{ status: 401, message }`
 * (`503` for a database outage), which Nest sends to the client as an `exception` event.
 *
 * To refuse the connection itself, use {@link socketIoMiddleware} (socket.io: the client gets
 * `connect_error` with `err.data` the payload) or {@link authenticateConnection} in
 * `handleConnection` (required with `ws`, whose messages carry no handshake). For those, add
 * `KnoxWsGuard` to the gateway module's `providers` and inject it.
 *
 * In handlers, `@KnoxUser()` and `@KnoxAuth()` read the connection's user and token.
 *
 * @example
 * @WebSocketGateway()
 * @UseGuards(KnoxWsGuard)
 * export class ChatGateway {
 *   @SubscribeMessage('whoami')
 *   whoami(@KnoxUser() user: User) { return user.username; }
 * }
 */
@Injectable()
export class KnoxWsGuard extends KnoxGuard {
  /**
   * The handshake query parameter to read the token from, or `null` (the default) not to read
   * the query at all. Set it in a subclass: `protected override readonly queryParam = 'token';`.
   */
  protected readonly queryParam: string | null = null;

  /** The module's cache, whose invalidations close revoked connections (property-injected). */
  @Optional()
  @Inject(KnoxCache)
  private readonly knoxCache?: KnoxCache;

  @Optional()
  @Inject(KnoxClock)
  private readonly knoxClock?: KnoxClock;

  /**
   * Authenticates the message's connection, or throws a `WsException` with the payload. A
   * connection authenticated at its handshake is closed on its first refused (401) message.
   */
  override async canActivate(context: ExecutionContext): Promise<boolean> {
    const client = context.switchToWs().getClient<object>();
    try {
      const admitted = await super.canActivate(context);
      const token = this.requestOf(client).auth;
      if (token) {
        this.connections?.touch(client, token.expiry);
      }
      return admitted;
    } catch (error) {
      const payload = knoxErrorPayload(error);
      if (payload?.status === 401 && this.connections?.has(client)) {
        this.connections.remove(client);
        this.refuse(client as WsClient, payload);
      }
      throw this.toWsException(error);
    }
  }

  /** The app's registry of connections authenticated at their handshake. */
  private get connections(): KnoxWsConnections | undefined {
    return this.knoxCache && this.knoxClock
      ? knoxWsConnectionsOf(this.knoxCache, this.knoxClock)
      : undefined;
  }

  /**
   * Holds a connection authenticated at its handshake: it is closed (as a refused handshake is)
   * as soon as its token is revoked, expires or its user is refused.
   */
  private hold(client: object, result: KnoxAuthResult): void {
    const registry = this.connections;
    const state = (client as WsClient).readyState;
    if (!registry || (state !== undefined && state > 1)) {
      return;
    }
    registry.add(
      client,
      result.token.digest,
      this.tokens.userIdOf(result.user),
      result.token.expiry,
      { recheck: () => this.recheck(client) },
    );
  }

  /**
   * A later middleware may refuse the socket, which then never connects and never emits
   * `disconnect`: let it go after a while rather than hold it for its token's lifetime.
   */
  private dropIfNeverConnected(socket: object): void {
    const registry = this.connections;
    if (!registry) {
      return;
    }
    setTimeout(() => {
      if ((socket as { connected?: boolean }).connected !== true) {
        registry.remove(socket);
      }
    }, PENDING_LIMIT).unref();
  }

  /** Authenticates a held connection again; closes it when refused. */
  private async recheck(
    client: object,
  ): Promise<Date | null | false | undefined> {
    try {
      return (await this.authenticateClient(client)).token.expiry;
    } catch (error) {
      const payload = knoxErrorPayload(error);
      if (payload?.status !== 401) {
        return undefined;
      }
      this.refuse(client as WsClient, payload);
      return false;
    }
  }

  /**
   * Authenticates a connection when it opens, from `handleConnection(client, request)`. On
   * success, resolves the user and the token (and the connection's handlers see them); on
   * failure, sends the payload to the client (socket.io: an `exception` event; `ws`:
   * `{"event":"exception","data":{…}}`), closes the connection (`ws` close code `4000 + status`,
   * e.g. 4401) and resolves `null`. With `ws`, pass the upgrade `request`: it is the only place
   * its headers and URL are seen.
   *
   * @example
   * async handleConnection(client: WebSocket, request: IncomingMessage) {
   *   await this.knoxWs.authenticateConnection(client, request);
   * }
   */
  async authenticateConnection(
    client: object,
    upgradeRequest?: IncomingMessage,
  ): Promise<KnoxAuthResult | null> {
    if (upgradeRequest) {
      setKnoxWsRequest(client, this.requestFromUpgrade(upgradeRequest));
    }
    try {
      const result = await this.authenticateClient(client);
      this.hold(client, result);
      return result;
    } catch (error) {
      const payload = knoxErrorPayload(error);
      if (!payload) {
        throw error;
      }
      this.refuse(client as WsClient, payload);
      return null;
    }
  }

  /**
   * A socket.io middleware that refuses the connection of a client without a valid token: the
   * client gets `connect_error` with `err.message` the message and `err.data` the payload.
   *
   * @example
   * afterInit(server: Server) { server.use(this.knoxWs.socketIoMiddleware()); }
   */
  socketIoMiddleware(): (
    socket: object,
    next: (error?: Error) => void,
  ) => void {
    return (socket, next) => {
      this.authenticateClient(socket).then(
        (result) => {
          this.hold(socket, result);
          next();
          this.dropIfNeverConnected(socket);
        },
        (error: unknown) => {
          const payload = knoxErrorPayload(error);
          const refusal = new Error(
            payload?.message ?? 'Internal server error',
          ) as Error & { data?: KnoxWsErrorPayload };
          refusal.data = payload ?? { status: 500, message: refusal.message };
          next(refusal);
        },
      );
    };
  }

  /** The connection's view (handshake headers, query, `auth`), where `user` and `auth` go. */
  protected override getRequest(context: ExecutionContext): KnoxRequest {
    return this.requestOf(context.switchToWs().getClient<object>());
  }

  /**
   * `auth.token` (the bare token, or with its scheme: `Token <token>`), then the `Authorization`
   * header, then the opted-in query parameter.
   */
  protected override extractToken(request: KnoxRequest): string | null {
    const auth = request.handshakeAuth as Record<string, unknown> | undefined;
    if (auth?.token !== undefined && auth.token !== null) {
      return this.checkToken(this.withoutScheme(auth.token));
    }
    const header = super.extractToken(request);
    if (header !== null) {
      return header;
    }
    if (this.queryParam !== null) {
      const query = request.query as Record<string, unknown> | undefined;
      const value = query?.[this.queryParam];
      if (value !== undefined) {
        return this.checkToken(value);
      }
    }
    return null;
  }

  /** The `WsException` a failure is answered with (override to reshape the payload). */
  protected toWsException(error: unknown): unknown {
    const payload = knoxErrorPayload(error);
    return payload ? new WsException(payload) : error;
  }

  /**
   * `auth.token` as many socket.io examples write it, `Token <token>` (or another accepted
   * scheme): the token after the scheme.
   */
  private withoutScheme(value: unknown): unknown {
    if (typeof value !== 'string') {
      return value;
    }
    const parts = value.trim().split(/[ \t]+/);
    const schemes = this.options.authSchemes.map((s) => s.toLowerCase());
    return parts.length === 2 && schemes.includes(parts[0].toLowerCase())
      ? parts[1]
      : value;
  }

  private checkToken(value: unknown): string {
    if (typeof value !== 'string' || !/^[\x21-\x7e]+$/.test(value)) {
      throw new UnauthorizedException(KnoxMessages.INVALID_TOKEN);
    }
    return value;
  }

  private async authenticateClient(client: object): Promise<KnoxAuthResult> {
    const request = this.requestOf(client);
    const token = this.extractToken(request);
    if (token === null) {
      throw new UnauthorizedException(KnoxMessages.NOT_PROVIDED);
    }
    const result = await this.tokens.authenticate(token, clientInfoOf(request));
    request.user = result.user;
    request.auth = result.token;
    return result;
  }

  private requestOf(client: object): KnoxRequest {
    let request = knoxWsRequestOf(client);
    if (!request) {
      const handshake = (client as WsClient).handshake;
      // A `ws` client that never went through authenticateConnection has no handshake to read.
      request = handshake
        ? {
            method: HANDSHAKE,
            headers: handshake.headers ?? {},
            ip: handshake.address,
            query: handshake.query,
            handshakeAuth: handshake.auth,
          }
        : { headers: {} };
      setKnoxWsRequest(client, request);
    }
    return request;
  }

  private requestFromUpgrade(upgrade: IncomingMessage): KnoxRequest {
    const url = new URL(upgrade.url ?? '/', 'http://localhost');
    return {
      method: HANDSHAKE,
      headers: upgrade.headers,
      ip: upgrade.socket?.remoteAddress,
      query: Object.fromEntries(url.searchParams),
    };
  }

  private refuse(client: WsClient, payload: KnoxWsErrorPayload): void {
    if (client.handshake && typeof client.emit === 'function') {
      client.emit('exception', payload);
      client.disconnect?.(true);
    } else if (typeof client.send === 'function') {
      client.send(JSON.stringify({ event: 'exception', data: payload }));
      client.close?.(4000 + payload.status, payload.message);
    }
  }
}

import type { IncomingMessage } from 'node:http';
import type { KnoxRequest } from '../../knox-request.js';

/**
 * The method a graphql-ws connection's view reports. Browsers open WebSockets cross-origin with
 * their cookies, so a connection authenticated by the token cookie must pass the same Origin
 * check as an unsafe HTTP method (as `KnoxWsGuard`'s handshakes do): this is not a safe method.
 */
const WEBSOCKET = 'WEBSOCKET';

/** What a graphql-ws `Context` carries (`graphql-ws` is not imported). */
interface GraphqlWsContext {
  connectionParams?: Readonly<Record<string, unknown>>;
  extra?: { request?: IncomingMessage };
}

/** The request views made for graphql-ws connections, by their graphql-ws context. */
const wsViews = new WeakMap<object, KnoxRequest>();
const views = new WeakSet<object>();

/**
 * The HTTP request inside a GraphQL context, without importing `@nestjs/graphql`: Apollo's
 * context is `{ req }` (Nest's default), Mercurius' is `{ reply }` (the request is
 * `reply.request`); an app with its own `context` factory keeps one of these. For a graphql-ws
 * operation (a subscription) it is the connection's view (see {@link graphqlWsViewOf}).
 */
export function knoxGqlRequestOf(gqlContext: unknown): KnoxRequest | undefined {
  const ctx = gqlContext as {
    req?: KnoxRequest;
    request?: KnoxRequest;
    reply?: { request?: KnoxRequest };
  } | null;
  const request = ctx?.req ?? ctx?.request ?? ctx?.reply?.request ?? undefined;
  if (request && typeof request.headers === 'object' && request.headers) {
    return request;
  }
  // Over graphql-ws, Nest's Apollo driver puts the graphql-ws context in `req`; an app's own
  // factory may spread it into its context instead.
  return (
    graphqlWsViewOf(request) ??
    graphqlWsViewOf(gqlContext) ??
    request ??
    undefined
  );
}

/** Whether `request` is the view of a graphql-ws connection (not an HTTP request). */
export function isKnoxGqlWsView(request: KnoxRequest): boolean {
  return views.has(request);
}

/**
 * The request-like view of a graphql-ws connection, made once per connection: the upgrade
 * request's headers (`extra.request`), with `Authorization` taken from the `connectionParams`
 * the client sent when they have one (any case: `Authorization`, `authorization`), and the
 * client's address. `user` / `auth` go on it.
 */
function graphqlWsViewOf(value: unknown): KnoxRequest | undefined {
  if (typeof value !== 'object' || value === null) {
    return undefined;
  }
  const ws = value as GraphqlWsContext;
  const upgrade = ws.extra?.request;
  if (!('connectionParams' in ws) && !upgrade?.headers) {
    return undefined;
  }
  let view = wsViews.get(value);
  if (!view) {
    const headers = { ...(upgrade?.headers ?? {}) };
    const fromParams = authorizationParam(ws.connectionParams);
    if (fromParams !== undefined) {
      headers.authorization = fromParams;
    }
    view = {
      method: WEBSOCKET,
      headers,
      ip: upgrade?.socket?.remoteAddress,
      url: upgrade?.url,
      // The scheme of the connection's own origin (the cookie transport's Origin check).
      socket: {
        encrypted:
          (upgrade?.socket as { encrypted?: unknown } | undefined)
            ?.encrypted === true,
      },
    };
    wsViews.set(value, view);
    views.add(view);
  }
  return view;
}

/**
 * The `Authorization` entry of `connectionParams`, whatever its case; `undefined` when there
 * is none. A value that is not a string is kept as an empty header: the upgrade request's
 * `Authorization` is not used then.
 */
function authorizationParam(
  params: Readonly<Record<string, unknown>> | undefined,
): string | undefined {
  if (typeof params !== 'object' || params === null) {
    return undefined;
  }
  for (const key of Object.keys(params)) {
    if (key.toLowerCase() === 'authorization') {
      const value = params[key];
      return typeof value === 'string' ? value : '';
    }
  }
  return undefined;
}

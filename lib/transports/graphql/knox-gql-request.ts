import type { KnoxRequest } from '../../options/knox-module-options.interface.js';

/**
 * The HTTP request inside a GraphQL context, without importing `@nestjs/graphql`: Apollo's
 * context is `{ req }` (Nest's default), Mercurius' is `{ reply }` (the request is
 * `reply.request`); an app with its own `context` factory keeps one of these.
 */
export function knoxGqlRequestOf(gqlContext: unknown): KnoxRequest | undefined {
  const ctx = gqlContext as {
    req?: KnoxRequest;
    request?: KnoxRequest;
    reply?: { request?: KnoxRequest };
  } | null;
  return ctx?.req ?? ctx?.request ?? ctx?.reply?.request ?? undefined;
}

/** The request views {@link knoxGqlRequestOf} made for graphql-ws connections. */
const wsViews = new WeakSet<object>();

/** Whether `request` is the view of a graphql-ws connection (not an HTTP request). */
export function isKnoxGqlWsView(request: KnoxRequest): boolean {
  return wsViews.has(request);
}

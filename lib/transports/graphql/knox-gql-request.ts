import type { KnoxRequest } from '../../knox-request.js';

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

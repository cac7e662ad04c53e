import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { knoxWsRequestOf } from '../transports/websocket/knox-ws-request.js';
import { knoxGqlRequestOf } from '../transports/graphql/knox-gql-request.js';

/**
 * The request a Knox guard authenticated, in any context: HTTP, a WebSocket message (the
 * connection's view, see `KnoxWsGuard`) or a GraphQL resolver (the HTTP request in its context).
 * Reads the contexts by shape only, so `@nestjs/websockets` and `@nestjs/graphql` stay optional.
 */
function authenticatedRequestOf(
  context: ExecutionContext,
): { user?: unknown; auth?: unknown } | undefined {
  switch (context.getType<string>()) {
    case 'ws':
      return knoxWsRequestOf(context.switchToWs().getClient());
    case 'graphql':
      return knoxGqlRequestOf(context.getArgByIndex(2));
    default:
      return context.switchToHttp().getRequest<{ user?: unknown }>();
  }
}

/**
 * The authenticated user (`request.user`), in a handler behind {@link KnoxGuard} — or in a
 * gateway handler behind `KnoxWsGuard`, or a resolver behind `KnoxGqlGuard`.
 *
 * @example
 * @UseGuards(KnoxGuard)
 * @Get('me')
 * me(@KnoxUser() user: User) { return user; }
 */
export const KnoxUser = createParamDecorator(
  (_data: unknown, context: ExecutionContext): unknown =>
    authenticatedRequestOf(context)?.user,
);

/**
 * The token record that authenticated the request (`request.auth`, a {@link KnoxToken}; never
 * the plaintext, and its digest is left out when serialized). Works in the same contexts as
 * {@link KnoxUser}.
 *
 * @example
 * @UseGuards(KnoxGuard)
 * @Get('session')
 * session(@KnoxAuth() token: KnoxToken) { return { id: token.id, expiry: token.expiry }; }
 */
export const KnoxAuth = createParamDecorator(
  (_data: unknown, context: ExecutionContext): unknown =>
    authenticatedRequestOf(context)?.auth,
);

import { Injectable, type ExecutionContext } from '@nestjs/common';
import { KnoxGuard } from '../../guard/knox.guard.js';
import type { KnoxRequest } from '../../knox-request.js';
import { knoxErrorPayload } from '../knox-transport-errors.js';
import { isKnoxGqlWsView, knoxGqlRequestOf } from './knox-gql-request.js';
import { KnoxGqlRefusal } from './knox-gql-refusal.js';

/** The `extensions.code` of each status a Knox failure can have. */
const CODES: Record<number, string> = {
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  503: 'SERVICE_UNAVAILABLE',
};

/**
 * {@link KnoxGuard} for GraphQL resolvers (`@nestjs/graphql` with Apollo or Mercurius): reads
 * the token from the HTTP request in the GraphQL context (`Authorization: Token …`, or the
 * cookie when the cookie transport is on), puts `user` / `auth` on that request (so
 * `@KnoxUser()` / `@KnoxAuth()` work in resolvers), and answers failures as a
 * {@link KnoxGqlRefusal}: the field's GraphQL error gets the HTTP message and `extensions:
 * { code: 'UNAUTHENTICATED', status: 401 }` (`FORBIDDEN` / 403, `SERVICE_UNAVAILABLE` / 503
 * for a database outage), and nothing is logged for it (a refusal is not a server error; an
 * outage is summarised by the library's outage log). In an HTTP context it behaves exactly as
 * `KnoxGuard`, so one `APP_GUARD` can serve REST controllers and resolvers.
 *
 * @example
 * @Resolver()
 * @UseGuards(KnoxGqlGuard)
 * export class MeResolver {
 *   @Query(() => String)
 *   me(@KnoxUser() user: User) { return user.username; }
 * }
 */
@Injectable()
export class KnoxGqlGuard extends KnoxGuard {
  /** Authenticates the operation's request, or throws a {@link KnoxGqlRefusal}. */
  override async canActivate(context: ExecutionContext): Promise<boolean> {
    try {
      return await super.canActivate(context);
    } catch (error) {
      throw context.getType<string>() === 'graphql'
        ? this.toGraphQLError(error)
        : error;
    }
  }

  /**
   * A query's or mutation's HTTP request: its guarded fields (aliases included) share one
   * authentication per token. A subscription, and any operation over a WebSocket, authenticates
   * on its own (its connection outlives a revocation).
   */
  protected override sharedAuthenticationScope(
    context: ExecutionContext,
    request: KnoxRequest,
  ): object | undefined {
    if (context.getType<string>() !== 'graphql') {
      return undefined;
    }
    const info = context.getArgByIndex(3) as
      { operation?: { operation?: string } } | undefined;
    return info?.operation?.operation === 'subscription' ||
      isKnoxGqlWsView(request)
      ? undefined
      : request;
  }

  /** The HTTP request of the GraphQL context (`req`, or Mercurius' `reply.request`). */
  protected override getRequest(context: ExecutionContext): KnoxRequest {
    if (context.getType<string>() !== 'graphql') {
      return super.getRequest(context);
    }
    const request = knoxGqlRequestOf(context.getArgByIndex(2));
    if (!request) {
      throw new Error(
        'KnoxGqlGuard: the GraphQL context has no HTTP request. Keep `req` in it: with your own ' +
          '`context` factory, return `({ req }) => ({ req, ... })` (Mercurius: `reply`).',
      );
    }
    return request;
  }

  /**
   * The error a failure is answered with (override to reshape it): a {@link KnoxGqlRefusal},
   * whose `extensions` become the field's GraphQL error's. Anything thrown that is not an
   * `HttpException` (a bug) is passed on as it is.
   */
  protected toGraphQLError(error: unknown): unknown {
    const payload = knoxErrorPayload(error);
    if (!payload) {
      return error;
    }
    return new KnoxGqlRefusal(
      payload.message,
      {
        code: CODES[payload.status] ?? 'INTERNAL_SERVER_ERROR',
        status: payload.status,
      },
      error,
    );
  }
}

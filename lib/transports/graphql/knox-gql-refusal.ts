import { HttpException } from '@nestjs/common';

/** What a {@link KnoxGqlRefusal} puts in the GraphQL error's `extensions`. */
export interface KnoxGqlRefusalExtensions {
  /** `UNAUTHENTICATED` (401), `FORBIDDEN` (403), `SERVICE_UNAVAILABLE` (503). */
  code: string;
  /** The HTTP status the same failure has over HTTP. */
  status: number;
  [key: string]: unknown;
}

/**
 * What {@link KnoxGqlGuard} throws for a refused field: an `HttpException` (so Nest's
 * exceptions handler logs nothing for it, as for a refusal over HTTP, and an app's
 * `@Catch(HttpException)` / `@Catch()` filters still see it) that carries GraphQL
 * `extensions`: graphql-js copies them onto the field's `GraphQLError`, so the client gets
 * `{ message, extensions: { code: 'UNAUTHENTICATED', status: 401 } }`. Its response is the bare
 * message, which Apollo's `autoTransformHttpErrors` leaves as it is.
 */
export class KnoxGqlRefusal extends HttpException {
  /** Copied onto the GraphQL error of the field. */
  readonly extensions: KnoxGqlRefusalExtensions;

  constructor(
    message: string,
    extensions: KnoxGqlRefusalExtensions,
    cause?: unknown,
  ) {
    super(message, extensions.status, cause === undefined ? {} : { cause });
    this.name = 'KnoxGqlRefusal';
    this.extensions = extensions;
  }
}

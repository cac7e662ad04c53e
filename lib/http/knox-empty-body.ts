import { Injectable, RequestMethod, type NestMiddleware } from '@nestjs/common';

/**
 * The module's routes that read no body, and their method: `logout`, `logoutall`,
 * `logoutothers`, `refresh`, `rotate`, `DELETE tokens/:id`.
 */
export const KNOX_BODYLESS_ROUTES: readonly {
  route: string;
  method: RequestMethod;
}[] = [
  { route: 'logout', method: RequestMethod.POST },
  { route: 'logoutall', method: RequestMethod.POST },
  { route: 'logoutothers', method: RequestMethod.POST },
  { route: 'refresh', method: RequestMethod.POST },
  { route: 'rotate', method: RequestMethod.POST },
  { route: 'tokens/:id', method: RequestMethod.DELETE },
];

/**
 * Lets the routes without a body take an empty one whatever `Content-Type` it declares. Many
 * clients send `Content-Type: application/json` on every request; on an empty body Fastify
 * refuses that with 400 before the route runs, so a logout would fail (and the token stay valid),
 * where Express reads it as `{}`. An empty body (no `Transfer-Encoding`, `Content-Length` absent
 * or 0) on these routes has its `Content-Type` dropped before the body is parsed: nothing is
 * parsed, on either platform. A non-empty body is left to the platform, as on any route.
 */
@Injectable()
export class KnoxEmptyBodyMiddleware implements NestMiddleware {
  use(
    request: { headers?: Record<string, string | string[] | undefined> },
    _response: unknown,
    next: () => void,
  ): void {
    const headers = request.headers;
    if (
      headers?.['content-type'] !== undefined &&
      headers['transfer-encoding'] === undefined &&
      (headers['content-length'] === undefined ||
        headers['content-length'] === '0')
    ) {
      delete headers['content-type'];
    }
    next();
  }
}

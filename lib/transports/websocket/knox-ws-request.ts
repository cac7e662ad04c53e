import type { KnoxRequest } from '../../knox-request.js';

/**
 * The request-like view of each WebSocket connection (its handshake headers, query and client
 * address), on which {@link KnoxWsGuard} puts `user` and `auth` after every successful check.
 * Kept here, without any import of `@nestjs/websockets`, so that the core decorators can read it.
 */
const requests = new WeakMap<object, KnoxRequest>();

/** The view of a connection, once {@link KnoxWsGuard} has seen it. */
export function knoxWsRequestOf(client: unknown): KnoxRequest | undefined {
  return typeof client === 'object' && client !== null
    ? requests.get(client)
    : undefined;
}

/** Records the view of a connection (the guard does, at the handshake or the first message). */
export function setKnoxWsRequest(client: object, request: KnoxRequest): void {
  requests.set(client, request);
}

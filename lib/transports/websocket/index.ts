/**
 * `nestjs-knox/websocket`: authentication for `@nestjs/websockets` gateways (socket.io or `ws`).
 * A separate entry point so that apps without `@nestjs/websockets` never load it.
 */
export { KnoxWsGuard, type KnoxWsErrorPayload } from './knox-ws.guard.js';
export { knoxWsRequestOf } from './knox-ws-request.js';

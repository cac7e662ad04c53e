import { isIPv4 } from 'node:net';
import type { KnoxClientInfo } from './events/knox.events.js';
import { IP_COLUMN_LENGTH, USER_AGENT_LENGTH } from './knox.constants.js';
import type { KnoxToken } from './store/knox-token.entity.js';

/** The HTTP request as Express or Fastify hands it to Nest (only what the module reads). */
export interface KnoxRequest {
  /** The request headers (lower-cased names). */
  headers: Record<string, string | string[] | undefined>;
  /** The client IP as the platform computed it (honouring `trust proxy`). */
  ip?: string;
  /** The parsed body. */
  body?: unknown;
  /** The authenticated user, set by {@link KnoxGuard}. */
  user?: unknown;
  /** The token record that authenticated the request, set by {@link KnoxGuard}. */
  auth?: KnoxToken;
  [key: string]: unknown;
}

/**
 * The client IP (as Express/Fastify computed it, honouring `trust proxy`) and user agent; `null`
 * for what a non-HTTP "request" (e.g. a WebSocket client) does not have.
 */
export function clientInfoOf(request: KnoxRequest): KnoxClientInfo {
  const agent = request.headers?.['user-agent'];
  const socket = request.socket as { remoteAddress?: string } | undefined;
  let ip = request.ip ?? socket?.remoteAddress ?? null;
  // An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d; record the IPv4 address.
  if (
    typeof ip === 'string' &&
    ip.startsWith('::ffff:') &&
    isIPv4(ip.slice(7))
  ) {
    ip = ip.slice(7);
  }
  return {
    ip: typeof ip === 'string' ? ip.slice(0, IP_COLUMN_LENGTH) : null,
    userAgent:
      typeof agent === 'string' ? agent.slice(0, USER_AGENT_LENGTH) : null,
  };
}

/** Sets a response header on Express or Fastify. */
export function setResponseHeader(
  response: unknown,
  name: string,
  value: string,
): void {
  const res = response as {
    header?: (name: string, value: string) => unknown;
    setHeader?: (name: string, value: string) => unknown;
  } | null;
  if (typeof res?.header === 'function') {
    res.header(name, value);
  } else if (typeof res?.setHeader === 'function') {
    res.setHeader(name, value);
  }
}

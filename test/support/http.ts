import { expect } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import type { Server } from 'node:http';
import net, { type AddressInfo } from 'node:net';

/** Re-exported: the time constants live in `time.ts`. */
export { SECOND, MINUTE, HOUR, DAY } from './time.js';

/** The knox messages, spelled out here so that a change in the library shows up in a test. */
export const MESSAGES = {
  INVALID_TOKEN: 'Invalid token.',
  USER_INACTIVE: 'User inactive or deleted.',
  NOT_PROVIDED: 'Authentication credentials were not provided.',
  NO_CREDENTIALS: 'Invalid token header. No credentials provided.',
  SPACES: 'Invalid token header. Token string should not contain spaces.',
  MALFORMED_HEADER: 'Invalid token header.',
  LIMIT_EXCEEDED: 'Maximum amount of tokens allowed per user exceeded.',
  BAD_CREDENTIALS: 'Invalid username/password.',
  UNAVAILABLE:
    'The authentication service is temporarily unavailable. Please retry shortly.',
} as const;

/** `Authorization: Basic …` for a username and password. */
export function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}

interface HttpAnswer {
  status: number;
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
}

/** A 401 in Nest's standard error body, with `WWW-Authenticate`. */
export function expectUnauthorized(
  res: HttpAnswer,
  message: string,
  scheme = 'Token',
): void {
  expect({
    status: res.status,
    body: res.body,
    wwwAuthenticate: res.headers['www-authenticate'],
  }).toEqual({
    status: 401,
    body: { statusCode: 401, message, error: 'Unauthorized' },
    wwwAuthenticate: scheme,
  });
}

/** A 403 for the token limit, in Nest's standard error body. */
export function expectLimitExceeded(res: HttpAnswer): void {
  expect({ status: res.status, body: res.body }).toEqual({
    status: 403,
    body: {
      statusCode: 403,
      message: MESSAGES.LIMIT_EXCEEDED,
      error: 'Forbidden',
    },
  });
}

/** No stack trace, file path or internal detail in an error body. */
export function expectNoInternals(text: string): void {
  expect(text).not.toMatch(/\n\s+at |node_modules|\.ts:\d|\.js:\d|stack/i);
}

/** A response read off a raw socket. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Sends bytes as they are over a TCP socket (Node's HTTP client refuses to send control
 * characters in a header) and parses the answer. The request should carry `Connection: close`.
 */
export async function rawRequest(
  app: INestApplication,
  request: Buffer | string,
): Promise<RawResponse> {
  const server = app.getHttpServer() as Server;
  if (!server.listening) {
    await app.listen(0, '127.0.0.1');
  }
  const { port } = server.address() as AddressInfo;
  const raw = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect(port, '127.0.0.1');
    socket.setTimeout(5000, () =>
      socket.destroy(new Error('raw request timed out')),
    );
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (error) =>
      chunks.length > 0 ? resolve(Buffer.concat(chunks)) : reject(error),
    );
    socket.on('close', () => resolve(Buffer.concat(chunks)));
    // Not end(): a half-closed socket makes Node's server drop a response still being computed.
    socket.write(
      typeof request === 'string' ? Buffer.from(request, 'latin1') : request,
    );
  });
  const text = raw.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const head = (end >= 0 ? text.slice(0, end) : text).split('\r\n');
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? '');
  if (!match) {
    throw new Error(
      `not an HTTP response: ${JSON.stringify(text.slice(0, 200))}`,
    );
  }
  const headers: Record<string, string> = {};
  for (const line of head.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) {
      headers[line.slice(0, colon).trim().toLowerCase()] = line
        .slice(colon + 1)
        .trim();
    }
  }
  return {
    status: Number(match[1]),
    headers,
    body: end >= 0 ? text.slice(end + 4) : '',
  };
}

/** A GET with the given raw `Authorization` value (latin1 bytes), closed after the answer. */
export function rawGet(
  app: INestApplication,
  path: string,
  authorization: Buffer,
): Promise<RawResponse> {
  return rawRequest(
    app,
    Buffer.concat([
      Buffer.from(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: `,
        'latin1',
      ),
      authorization,
      Buffer.from('\r\nConnection: close\r\n\r\n', 'latin1'),
    ]),
  );
}

import { BadRequestException, UnauthorizedException } from '@nestjs/common';
import { KnoxMessages } from '../knox.messages.js';

/**
 * Reading a login request: the body, the credentials (HTTP Basic or JSON) and the token name.
 * Pure functions of their input; they throw `BadRequestException` (400 naming the field) or
 * `UnauthorizedException` (401, to be answered with the Basic challenge).
 */

/** Credentials read from a login request. */
export interface KnoxCredentials {
  username: string;
  password: string;
}

/** Longest username and password the login endpoint reads. */
const MAX_USERNAME = 150;
const MAX_PASSWORD = 1024;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
/**
 * Refused in token names, which are shown in session lists: control characters, lone
 * surrogates, line separators and bidirectional overrides.
 */
const UNPRINTABLE_NAME =
  /[\p{Cc}\p{Cs}\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;
/**
 * Refused in usernames before `validateUser` sees them (no real username has them, and a NUL
 * makes PostgreSQL fail the lookup): control characters and lone surrogates. Passwords may hold
 * anything but NUL.
 */
const UNUSABLE_USERNAME = /[\p{Cc}\p{Cs}]/u;
const UNUSABLE_PASSWORD = /\u0000/;

/** The login body as an object: `{}` for none; 400 for anything but a JSON object. */
export function readLoginBody(body: unknown): Record<string, unknown> {
  // No body is `undefined` on both platforms; a JSON `null` (Fastify passes it through,
  // Express's strict parser refuses it) is a body that is not an object.
  if (body === undefined || body === '') {
    return {};
  }
  if (
    body === null ||
    typeof body !== 'object' ||
    Array.isArray(body) ||
    Buffer.isBuffer(body)
  ) {
    throw new BadRequestException(KnoxMessages.BODY_NOT_OBJECT);
  }
  return body as Record<string, unknown>;
}

/** The credentials: from an `Authorization: Basic` header if there is one, else the body. */
export function readCredentials(
  authorization: unknown,
  body: Record<string, unknown>,
): KnoxCredentials {
  if (
    typeof authorization === 'string' &&
    /^basic(?:[ \t]|$)/i.test(authorization)
  ) {
    return readBasic(authorization);
  }
  if (body.username === undefined && body.password === undefined) {
    throw new UnauthorizedException(KnoxMessages.NOT_PROVIDED);
  }
  return {
    username: readField(
      body,
      'username',
      MAX_USERNAME,
      UNUSABLE_USERNAME,
      'control characters or invalid Unicode',
    ),
    password: readField(
      body,
      'password',
      MAX_PASSWORD,
      UNUSABLE_PASSWORD,
      'NUL characters',
    ),
  };
}

function readBasic(header: string): KnoxCredentials {
  const parts = header.split(/[ \t]+/).filter((part) => part.length > 0);
  if (parts.length === 1) {
    throw new UnauthorizedException(KnoxMessages.BASIC_NO_CREDENTIALS);
  }
  if (parts.length > 2) {
    throw new UnauthorizedException(KnoxMessages.BASIC_SPACES);
  }
  const encoded = parts[1];
  if (encoded.length % 4 !== 0 || !BASE64.test(encoded)) {
    throw new UnauthorizedException(KnoxMessages.BASIC_BAD_BASE64);
  }
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0 || decoded.includes('\uFFFD')) {
    throw new UnauthorizedException(KnoxMessages.BASIC_BAD_BASE64);
  }
  const username = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  if (
    username.length === 0 ||
    username.length > MAX_USERNAME ||
    password.length > MAX_PASSWORD ||
    UNUSABLE_USERNAME.test(username) ||
    UNUSABLE_PASSWORD.test(password)
  ) {
    throw new UnauthorizedException(KnoxMessages.INVALID_CREDENTIALS);
  }
  return { username, password };
}

function readField(
  body: Record<string, unknown>,
  field: string,
  max: number,
  unusable: RegExp,
  unusableDescription: string,
): string {
  const value = body[field];
  if (typeof value !== 'string') {
    throw new BadRequestException(
      value === undefined
        ? `\`${field}\` is required.`
        : `\`${field}\` must be a string.`,
    );
  }
  if (value.length === 0 || value.length > max) {
    throw new BadRequestException(
      `\`${field}\` must be between 1 and ${max} characters long.`,
    );
  }
  if (unusable.test(value)) {
    throw new BadRequestException(
      `\`${field}\` must not contain ${unusableDescription}.`,
    );
  }
  return value;
}

/** The token name in the body (trimmed), `null` for none; 400 for one that is not usable. */
export function readTokenName(
  body: Record<string, unknown>,
  max: number,
): string | null {
  const name = body.name;
  if (name === undefined || name === null) {
    return null;
  }
  if (
    typeof name !== 'string' ||
    name.trim().length === 0 ||
    name.length > max ||
    UNPRINTABLE_NAME.test(name)
  ) {
    throw new BadRequestException(
      `\`name\` must be a string of 1 to ${max} printable characters.`,
    );
  }
  return name.trim();
}

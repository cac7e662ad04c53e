/** The schemas and answers the OpenAPI description of the HTTP API is made of. */

/** An OpenAPI schema object. */
export type SchemaObject = Record<string, unknown>;

/** One documented answer of a route. */
export interface KnoxResponseDoc {
  status: number;
  description: string;
  schema?: SchemaObject;
  headers?: Record<string, { description: string; schema: SchemaObject }>;
}

/** An error body's message: one, or several (validation). */
export const ERROR_MESSAGE_SCHEMA: SchemaObject = {
  oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }],
};

/** The error body every refusal answers with (Nest's `HttpException` shape). */
export const KNOX_ERROR_SCHEMA: SchemaObject = {
  type: 'object',
  required: ['statusCode', 'message'],
  properties: {
    statusCode: { type: 'integer', example: 401 },
    message: { ...ERROR_MESSAGE_SCHEMA, example: 'Invalid token.' },
    error: { type: 'string', example: 'Unauthorized' },
  },
};

export const EXPIRY_SCHEMA: SchemaObject = {
  description:
    'When the token stops working, as `formatExpiry` renders it (default: an ISO 8601 date-time); `null` never.',
  oneOf: [{ type: 'string', format: 'date-time' }, { type: 'number' }],
  nullable: true,
  example: '2026-12-01T18:00:00.000Z',
};

export const TOKEN_SCHEMA: SchemaObject = {
  type: 'string',
  description:
    'The token, shown once: send it as `Authorization: Token <token>` (or `Bearer <token>`).',
  example: '9f3c…e41a',
};

export const ID_SCHEMA: SchemaObject = {
  type: 'string',
  description: "The token's public id, as `GET tokens` lists it.",
};

export const ABILITIES_SCHEMA: SchemaObject = {
  type: 'array',
  items: { type: 'string' },
  description:
    'What the token may do (`posts:read`, `posts:*`, `*`); `null` for every ability.',
  example: ['posts:read'],
};

/**
 * `POST login` answers this (with `user` when `serializeUser` is set). With the cookie
 * transport on, `token` is absent: it is in `Set-Cookie` only.
 */
export const KNOX_LOGIN_RESPONSE_SCHEMA: SchemaObject = {
  type: 'object',
  required: ['expiry', 'id'],
  properties: {
    expiry: EXPIRY_SCHEMA,
    token: TOKEN_SCHEMA,
    id: ID_SCHEMA,
    user: {
      type: 'object',
      additionalProperties: true,
      description: 'What `serializeUser` returns; absent when it is not set.',
    },
  },
};

export const ROTATE_RESPONSE_SCHEMA: SchemaObject = {
  type: 'object',
  required: ['expiry', 'id'],
  properties: { expiry: EXPIRY_SCHEMA, token: TOKEN_SCHEMA, id: ID_SCHEMA },
};

/** `POST tokens` answers this: the new personal access token, shown once. */
export const KNOX_PERSONAL_TOKEN_SCHEMA: SchemaObject = {
  type: 'object',
  required: ['id', 'token', 'expiry', 'abilities', 'name'],
  properties: {
    id: ID_SCHEMA,
    token: TOKEN_SCHEMA,
    expiry: EXPIRY_SCHEMA,
    abilities: { ...ABILITIES_SCHEMA, nullable: false },
    name: { type: 'string', example: 'CI deploy key' },
  },
};

/** The body of `POST tokens`. */
export const KNOX_PERSONAL_TOKEN_BODY_SCHEMA: SchemaObject = {
  type: 'object',
  required: ['name', 'abilities'],
  properties: {
    name: {
      type: 'string',
      description: 'What the token is for.',
      example: 'CI deploy key',
    },
    abilities: { ...ABILITIES_SCHEMA, nullable: false },
    password: {
      type: 'string',
      format: 'password',
      description:
        'The account password again; not needed when the calling token holds `personalAccessTokens.createAbility`.',
    },
    ttl: {
      type: 'integer',
      nullable: true,
      description:
        'Lifetime in ms (default and cap: `personalAccessTokens.maxTtl`); `null` never expires when there is no cap.',
    },
  },
};

/** One item of `GET tokens` (`KnoxSessionView`): never the token or its digest. */
export const KNOX_SESSION_SCHEMA: SchemaObject = {
  type: 'object',
  required: [
    'id',
    'name',
    'userAgent',
    'ip',
    'created',
    'lastUsedAt',
    'lastUsedIp',
    'expiry',
    'abilities',
    'current',
  ],
  properties: {
    id: {
      type: 'string',
      description: 'The public id, for `DELETE tokens/{id}`.',
    },
    name: { type: 'string', nullable: true, example: 'laptop' },
    userAgent: { type: 'string', nullable: true },
    ip: { type: 'string', nullable: true, example: '203.0.113.7' },
    created: { type: 'string', format: 'date-time' },
    lastUsedAt: { type: 'string', format: 'date-time', nullable: true },
    lastUsedIp: { type: 'string', nullable: true, example: '203.0.113.7' },
    expiry: { type: 'string', format: 'date-time', nullable: true },
    abilities: { ...ABILITIES_SCHEMA, nullable: true },
    current: {
      type: 'boolean',
      description: 'Whether this is the token making the request.',
    },
  },
};

/** The JSON login body; with `Authorization: Basic` only `name` is read from it. */
export const KNOX_LOGIN_BODY_SCHEMA: SchemaObject = {
  type: 'object',
  properties: {
    username: { type: 'string', maxLength: 150, example: 'alice' },
    password: {
      type: 'string',
      maxLength: 1024,
      format: 'password',
      example: 'secret-password',
    },
    name: {
      type: 'string',
      description:
        'A name for this token (the device), shown in `GET tokens`; optional.',
      example: 'laptop',
    },
    abilities: {
      ...ABILITIES_SCHEMA,
      description:
        'The abilities this login asks for, within the `loginAbilities` option (400 when it is not set).',
    },
  },
};

/** The reason phrases of the statuses the module answers with. */
export const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  429: 'Too Many Requests',
  503: 'Service Unavailable',
};

/** An error answer: {@link KNOX_ERROR_SCHEMA}, its examples naming this status. */
export const error = (
  status: number,
  description: string,
): KnoxResponseDoc => ({
  status,
  description,
  schema: {
    ...KNOX_ERROR_SCHEMA,
    properties: {
      statusCode: { type: 'integer', example: status },
      message: { ...ERROR_MESSAGE_SCHEMA, example: description },
      error: { type: 'string', example: REASONS[status] ?? 'Error' },
    },
  },
});

export const UNAUTHORIZED: KnoxResponseDoc = {
  ...error(
    401,
    'No token, a malformed `Authorization` header, or a token that is invalid, expired or revoked.',
  ),
  headers: {
    'WWW-Authenticate': {
      description: 'The scheme to use: `Token`.',
      schema: { type: 'string' },
    },
  },
};
export const UNAVAILABLE = error(503, 'The token database is unreachable.');
export const NO_STORE = {
  'Cache-Control': { description: '`no-store`', schema: { type: 'string' } },
};

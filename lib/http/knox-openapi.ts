import type { Provider } from '@nestjs/common';
// Types only: `@nestjs/swagger` is an optional peer, imported at run time by `describeKnoxRoutes`.
import { KnoxController } from './knox.controller.js';

/**
 * The OpenAPI description of the HTTP API, applied with `@nestjs/swagger`'s own decorators when
 * the app has it installed (an optional peer, imported lazily), so that `SwaggerModule` lists the
 * real routes with their bodies, answers, status codes, tag and security, and leaves out the
 * 405 handlers. Route methods are described by name from one table: a method the controller
 * class lacks is skipped, a new route is described by adding an entry.
 */

type SchemaObject = Record<string, unknown>;

/** One documented answer of a route. */
interface KnoxResponseDoc {
  status: number;
  description: string;
  schema?: SchemaObject;
  headers?: Record<string, { description: string; schema: SchemaObject }>;
}

/** How one route method is described. */
export interface KnoxRouteDoc {
  summary: string;
  description?: string;
  /** Answered only with a valid token (`Authorization: Token …` or `Bearer …`). */
  guarded: boolean;
  body?: { description: string; required: boolean; schema: SchemaObject };
  params?: { name: string; description: string }[];
  responses: KnoxResponseDoc[];
}

/** Names of the security schemes that {@link addKnoxSecurity} adds and the guarded routes require. */
export const KNOX_SECURITY_SCHEMES = {
  token: 'Token',
  bearer: 'Bearer',
  basic: 'Basic',
} as const;

/** An error body's message: one, or several (validation). */
const ERROR_MESSAGE_SCHEMA: SchemaObject = {
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

const EXPIRY_SCHEMA: SchemaObject = {
  description:
    'When the token stops working, as `formatExpiry` renders it (default: an ISO 8601 date-time); `null` never.',
  oneOf: [{ type: 'string', format: 'date-time' }, { type: 'number' }],
  nullable: true,
  example: '2026-12-01T18:00:00.000Z',
};

const TOKEN_SCHEMA: SchemaObject = {
  type: 'string',
  description:
    'The token, shown once: send it as `Authorization: Token <token>` (or `Bearer <token>`).',
  example: '9f3c…e41a',
};

const ID_SCHEMA: SchemaObject = {
  type: 'string',
  description: "The token's public id, as `GET tokens` lists it.",
};

const ABILITIES_SCHEMA: SchemaObject = {
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

const ROTATE_RESPONSE_SCHEMA: SchemaObject = {
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
const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  429: 'Too Many Requests',
  503: 'Service Unavailable',
};

/** An error answer: {@link KNOX_ERROR_SCHEMA}, its examples naming this status. */
const error = (status: number, description: string): KnoxResponseDoc => ({
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

const UNAUTHORIZED: KnoxResponseDoc = {
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
const UNAVAILABLE = error(503, 'The token database is unreachable.');
const NO_STORE = {
  'Cache-Control': { description: '`no-store`', schema: { type: 'string' } },
};

/**
 * The routes by controller method name. Each guarded route also answers 401 and 503 (added
 * below); a method named here that the controller class lacks is skipped.
 */
export const KNOX_ROUTE_DOCS: Record<string, KnoxRouteDoc> = {
  login: {
    summary: 'Log in: a new token for this device',
    description:
      'Credentials by HTTP Basic (`Authorization: Basic base64(username:password)`) or in a JSON body `{ username, password }`; `name` names the token. The token is answered once.',
    guarded: false,
    body: {
      description:
        'JSON credentials, or only `{ name }` (or no body) with `Authorization: Basic`.',
      required: false,
      schema: KNOX_LOGIN_BODY_SCHEMA,
    },
    responses: [
      {
        status: 200,
        description:
          'The new token (shape changed by `getLoginResponse` if set).',
        schema: KNOX_LOGIN_RESPONSE_SCHEMA,
        headers: NO_STORE,
      },
      error(400, 'A body that is not a JSON object, or a bad field.'),
      {
        ...error(
          401,
          'Missing or wrong credentials, or an inactive user; answered with the Basic challenge.',
        ),
        headers: {
          'WWW-Authenticate': {
            description: '`Basic realm="api"`',
            schema: { type: 'string' },
          },
        },
      },
      error(403, 'The user has reached `tokenLimitPerUser` (policy `reject`).'),
      error(
        429,
        'Too many failed logins (`loginThrottle`); see `Retry-After`.',
      ),
      UNAVAILABLE,
    ],
  },
  logout: {
    summary: 'Log out: revoke the token of this request',
    guarded: true,
    responses: [{ status: 204, description: 'Revoked.' }],
  },
  logoutAll: {
    summary: "Log out everywhere: revoke all the user's tokens",
    guarded: true,
    responses: [{ status: 204, description: 'All revoked.' }],
  },
  logoutOthers: {
    summary: "Revoke all the user's tokens except this one",
    guarded: true,
    responses: [{ status: 204, description: 'The others revoked.' }],
  },
  listTokens: {
    summary: "The user's live tokens (sessions)",
    guarded: true,
    responses: [
      {
        status: 200,
        description: 'One item per live token, never the token itself.',
        schema: { type: 'array', items: KNOX_SESSION_SCHEMA },
      },
    ],
  },
  createToken: {
    summary: 'Create a personal access token',
    description:
      "Needs the account password again, or a calling token holding `personalAccessTokens.createAbility`; the new token's abilities must be held by the calling token. Answers 405 when `personalAccessTokens` is off.",
    guarded: true,
    body: {
      description: '`{ name, abilities, password?, ttl? }`',
      required: true,
      schema: KNOX_PERSONAL_TOKEN_BODY_SCHEMA,
    },
    responses: [
      {
        status: 201,
        description: 'The new token, shown once.',
        schema: KNOX_PERSONAL_TOKEN_SCHEMA,
        headers: NO_STORE,
      },
      error(400, 'A bad field, or no password where one is needed.'),
      error(
        403,
        'A wrong password, abilities the calling token lacks, or the token limit.',
      ),
      error(429, 'Too many wrong passwords (`loginThrottle`).'),
    ],
  },
  renameToken: {
    summary: "Rename one of the user's tokens",
    guarded: true,
    params: [{ name: 'id', description: 'The id from `GET tokens`.' }],
    body: {
      description: '`{ name }`; `null` clears the name.',
      required: true,
      schema: {
        type: 'object',
        required: ['name'],
        properties: { name: { type: 'string', nullable: true } },
      },
    },
    responses: [
      {
        status: 200,
        description: 'The renamed token.',
        schema: KNOX_SESSION_SCHEMA,
      },
      error(400, 'A bad name.'),
      error(404, 'No live token of this user has this id.'),
    ],
  },
  revokeToken: {
    summary: "Revoke one of the user's tokens by id",
    guarded: true,
    params: [{ name: 'id', description: 'The id from `GET tokens`.' }],
    responses: [
      { status: 204, description: 'Revoked.' },
      error(404, 'No live token of this user has this id.'),
    ],
  },
  refresh: {
    summary: "Extend this token's expiry now",
    guarded: true,
    responses: [
      {
        status: 200,
        description: 'The new expiry.',
        schema: {
          type: 'object',
          required: ['expiry'],
          properties: { expiry: EXPIRY_SCHEMA },
        },
      },
    ],
  },
  rotate: {
    summary: 'Rotate: a new token replaces this one',
    description:
      'The session keeps its name, device and creation time; the old token stops working (after `rotateGracePeriod`, if set).',
    guarded: true,
    responses: [
      {
        status: 200,
        description: 'The new token, shown once.',
        schema: ROTATE_RESPONSE_SCHEMA,
        headers: NO_STORE,
      },
      error(403, 'The user has reached `tokenLimitPerUser`.'),
    ],
  },
};

/** The tag of the module's operations. */
const KNOX_OPENAPI_TAG = 'auth';

/** Functions already described (the metadata is on the function, shared by every subclass). */
const described = new WeakSet<object>();

/**
 * The decorators of `@nestjs/swagger` this file applies, written out so that the package's type
 * declarations do not import it: apps without it type-check them (`skipLibCheck: false`).
 */
export interface SwaggerApi {
  ApiOperation(options: object): MethodDecorator;
  ApiBody(options: object): MethodDecorator;
  ApiParam(options: object): MethodDecorator;
  ApiResponse(options: object): MethodDecorator;
  ApiSecurity(name: string | Record<string, string[]>): MethodDecorator;
  ApiTags(...tags: string[]): ClassDecorator;
}

/**
 * Applies the OpenAPI decorators to the route methods of `controller` (and the classes it
 * extends), from {@link KNOX_ROUTE_DOCS}. Idempotent.
 */
export function applyKnoxOpenApi(
  swagger: SwaggerApi,
  controller: abstract new (...args: never[]) => unknown,
  docs: Record<string, KnoxRouteDoc> = KNOX_ROUTE_DOCS,
): void {
  for (const [name, descriptor] of routeMethods(controller)) {
    if (described.has(descriptor.value as object)) {
      continue;
    }
    const decorators = docs[name] ? decoratorsFor(swagger, docs[name]) : [];
    for (const decorate of decorators) {
      decorate(controller.prototype as object, name, descriptor);
    }
    described.add(descriptor.value as object);
  }
}

/** Every method of the class and its ancestors, nearest definition first. */
function routeMethods(
  controller: abstract new (...args: never[]) => unknown,
): Map<string, PropertyDescriptor> {
  const methods = new Map<string, PropertyDescriptor>();
  for (
    let proto = controller.prototype as object | null;
    proto && proto !== Object.prototype;
    proto = Object.getPrototypeOf(proto) as object | null
  ) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      const descriptor = Object.getOwnPropertyDescriptor(proto, name);
      if (
        name !== 'constructor' &&
        !methods.has(name) &&
        typeof descriptor?.value === 'function'
      ) {
        methods.set(name, descriptor);
      }
    }
  }
  return methods;
}

/** The decorators that describe one route: operation, body, params, answers, security. */
function decoratorsFor(
  swagger: SwaggerApi,
  doc: KnoxRouteDoc,
): MethodDecorator[] {
  return [
    swagger.ApiOperation({
      summary: doc.summary,
      description: doc.description,
    }),
    ...(doc.body
      ? [
          swagger.ApiBody({
            description: doc.body.description,
            required: doc.body.required,
            schema: doc.body.schema,
          }),
        ]
      : []),
    ...(doc.params ?? []).map((param) =>
      swagger.ApiParam({
        name: param.name,
        description: param.description,
        type: String,
      }),
    ),
    ...responseDecorators(swagger, doc),
    ...securityDecorators(swagger, doc.guarded),
  ];
}

/** The route's answers; a guarded route also answers 401 and 503. */
function responseDecorators(
  swagger: SwaggerApi,
  doc: KnoxRouteDoc,
): MethodDecorator[] {
  const responses = doc.guarded
    ? [...doc.responses, UNAUTHORIZED, UNAVAILABLE]
    : doc.responses;
  return responses.map((response) =>
    swagger.ApiResponse({
      status: response.status,
      description: response.description,
      ...(response.schema ? { schema: response.schema } : {}),
      ...(response.headers ? { headers: response.headers } : {}),
    }),
  );
}

/** A guarded route takes a token (`Token` or `Bearer`); login takes Basic or a JSON body. */
function securityDecorators(
  swagger: SwaggerApi,
  guarded: boolean,
): MethodDecorator[] {
  return guarded
    ? [
        swagger.ApiSecurity(KNOX_SECURITY_SCHEMES.token),
        swagger.ApiSecurity(KNOX_SECURITY_SCHEMES.bearer),
      ]
    : [
        swagger.ApiSecurity(KNOX_SECURITY_SCHEMES.basic),
        swagger.ApiSecurity({}),
      ];
}

/**
 * Imports `@nestjs/swagger` if the app has it and describes the routes of {@link KnoxController}
 * (so also those of any subclass), and tags the controller the module mounts. Without it, does
 * nothing.
 */
export async function describeKnoxRoutes(
  mounted?: abstract new (...args: never[]) => unknown,
): Promise<boolean> {
  let swagger: SwaggerApi;
  try {
    swagger = await import('@nestjs/swagger');
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      return false;
    }
    throw error;
  }
  applyKnoxOpenApi(swagger, KnoxController);
  if (mounted && !described.has(mounted)) {
    swagger.ApiTags(KNOX_OPENAPI_TAG)(mounted);
    described.add(mounted);
  }
  return true;
}

/** Token of the provider below; its value says whether the routes were described. */
export const KNOX_OPENAPI = Symbol('KNOX_OPENAPI');

/**
 * Describes the routes while the app is built (an async provider is awaited before
 * `NestFactory.create` returns), so before the app can call `SwaggerModule.createDocument`.
 * `mounted`: the controller class the module mounts, if any (it gets the `auth` tag).
 */
export function knoxOpenApiProvider(
  mounted?: abstract new (...args: never[]) => unknown,
): Provider {
  return {
    provide: KNOX_OPENAPI,
    useFactory: () => describeKnoxRoutes(mounted),
  };
}

/** The part of `@nestjs/swagger`'s `DocumentBuilder` that {@link addKnoxSecurity} uses. */
export interface KnoxDocumentBuilder {
  addApiKey(options: KnoxSecuritySchemeObject, name: string): this;
  addBearerAuth(options: KnoxSecuritySchemeObject, name: string): this;
  addBasicAuth(options: KnoxSecuritySchemeObject, name: string): this;
}

/** An OpenAPI security scheme, as {@link addKnoxSecurity} passes it to the builder. */
export interface KnoxSecuritySchemeObject {
  type: 'apiKey' | 'http' | 'oauth2' | 'openIdConnect';
  in?: string;
  name?: string;
  scheme?: string;
  bearerFormat?: string;
  description?: string;
  [extension: `x-${string}`]: unknown;
}

/** Options of {@link addKnoxSecurity}. */
export interface KnoxOpenApiSecurityOptions {
  /**
   * Also add the `Bearer` scheme (`Authorization: Bearer …`), accepted when `authHeaderPrefix`
   * lists it.
   * @default true
   */
  bearer?: boolean;
  /**
   * Also add the `Basic` scheme, which `POST {path}/login` accepts for credentials.
   * @default true
   */
  basic?: boolean;
}

/**
 * Adds the security schemes the knox routes require to a `DocumentBuilder`: `Token` (an API key
 * in the `Authorization` header, sent as `Token <token>`), `Bearer` and `Basic` (login).
 *
 * @example
 * import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
 * import { addKnoxSecurity } from 'nestjs-knox';
 *
 * const config = addKnoxSecurity(new DocumentBuilder().setTitle('My API')).build();
 * SwaggerModule.setup('docs', app, () => SwaggerModule.createDocument(app, config));
 */
export function addKnoxSecurity<B extends KnoxDocumentBuilder>(
  builder: B,
  options: KnoxOpenApiSecurityOptions = {},
): B {
  builder.addApiKey(
    {
      type: 'apiKey',
      in: 'header',
      name: 'Authorization',
      description: 'The token with its scheme: `Token <token>`.',
    },
    KNOX_SECURITY_SCHEMES.token,
  );
  if (options.bearer ?? true) {
    builder.addBearerAuth(
      {
        type: 'http',
        scheme: 'bearer',
        // Not a JWT (@nestjs/swagger's default): an opaque token.
        bearerFormat: 'opaque',
        description: 'The token as `Authorization: Bearer <token>`.',
      },
      KNOX_SECURITY_SCHEMES.bearer,
    );
  }
  if (options.basic ?? true) {
    builder.addBasicAuth(
      {
        type: 'http',
        scheme: 'basic',
        description: 'Username and password, for `POST login`.',
      },
      KNOX_SECURITY_SCHEMES.basic,
    );
  }
  return builder;
}

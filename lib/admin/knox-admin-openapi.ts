import type { Provider } from '@nestjs/common';
import { KNOX_RESOLVED_OPTIONS } from '../knox.constants.js';
import {
  applyKnoxOpenApi,
  type SwaggerApi,
} from '../http/openapi/knox-openapi.js';
import type { KnoxRouteDoc } from '../http/openapi/knox-openapi.routes.js';
import { KNOX_ERROR_SCHEMA } from '../http/openapi/knox-openapi.schemas.js';
import type { ResolvedKnoxOptions } from '../options/knox-options.js';
import { KnoxAdminController } from './knox-admin.controller.js';
import {
  KNOX_ADMIN_DEFAULT_LIMIT,
  KNOX_ADMIN_MAX_LIMIT,
} from '../admin-tokens/knox-admin-query.js';

type SchemaObject = Record<string, unknown>;

/** The tag of the admin's operations, apart from the users' own `auth`. */
export const KNOX_ADMIN_OPENAPI_TAG = 'auth-admin';

const DATE = (description: string, nullable = true): SchemaObject => ({
  type: 'string',
  format: 'date-time',
  nullable,
  description,
});
const TEXT = (description: string): SchemaObject => ({
  type: 'string',
  nullable: true,
  description,
});

/** One item of `GET admin/tokens`: never the token, its digest or anything to rebuild it. */
export const KNOX_ADMIN_TOKEN_SCHEMA: SchemaObject = {
  type: 'object',
  required: ['id', 'userId', 'user', 'kind', 'createdAt', 'active'],
  properties: {
    id: {
      type: 'string',
      format: 'uuid',
      description: "The token's public id.",
    },
    userId: { description: "The owner's primary key." },
    user: {
      type: 'string',
      description: "The owner's label (`admin.describeUser`).",
    },
    name: TEXT('The name the client gave the token.'),
    kind: { type: 'string', enum: ['session', 'personal-access-token'] },
    abilities: {
      type: 'array',
      items: { type: 'string' },
      nullable: true,
      description: 'What the token may do; `null` for every ability.',
    },
    createdAt: DATE('When the session began.', false),
    expiresAt: DATE('When the token stops working; `null` never.'),
    lastUsedAt: DATE('When the token was last used.'),
    lastUsedIp: TEXT('The client IP of the last use.'),
    ip: TEXT('The client IP of the login.'),
    userAgent: TEXT('The user agent of the login.'),
    retiredAt: DATE('When a rotation replaced it (grace period).'),
    active: { type: 'boolean', description: 'Whether it still works.' },
  },
};

const PAGE_SCHEMA: SchemaObject = {
  type: 'object',
  required: ['items', 'nextCursor'],
  properties: {
    items: { type: 'array', items: KNOX_ADMIN_TOKEN_SCHEMA },
    nextCursor: {
      type: 'string',
      nullable: true,
      description: 'Pass it as `cursor` for the next page; `null` on the last.',
    },
  },
};

const error = (status: number, description: string) => ({
  status,
  description,
  schema: KNOX_ERROR_SCHEMA,
});
const REFUSALS = [
  error(
    403,
    'Not an admin (`admin.isAdmin`), or a token whose abilities lack `knox:admin`.',
  ),
  error(404, 'No `admin` option: the admin does not exist.'),
];

/** The admin's API routes, by method name. */
export const KNOX_ADMIN_ROUTE_DOCS: Record<string, KnoxRouteDoc> = {
  list: {
    summary: "List every user's tokens (admin)",
    description: `Filters combine with AND. Query: \`userId\`, \`search\` (name, IPs, user agent, user label; a whole token or token id finds that token), \`kind\` (\`session\` or \`personal-access-token\`), \`active\` (\`true\`/\`false\`), \`sort\` (\`-created\` default, \`created\`, \`-lastUsedAt\`, \`lastUsedAt\`, \`-expiry\`, \`expiry\`), \`limit\` (1 to ${KNOX_ADMIN_MAX_LIMIT}, default ${KNOX_ADMIN_DEFAULT_LIMIT}), \`cursor\` (the previous page's \`nextCursor\`).`,
    guarded: true,
    responses: [
      { status: 200, description: 'One page.', schema: PAGE_SCHEMA },
      error(400, 'An unknown parameter or a value it does not take.'),
      ...REFUSALS,
    ],
  },
  revokeOne: {
    summary: 'Revoke any token by id (admin)',
    guarded: true,
    params: [{ name: 'id', description: "The token's public id." }],
    responses: [
      { status: 204, description: 'Revoked.' },
      ...REFUSALS.slice(0, 1),
      error(404, 'No such token (or no `admin` option).'),
    ],
  },
  revokeMany: {
    summary: 'Revoke tokens by id (admin)',
    guarded: true,
    body: {
      description: `1 to ${KNOX_ADMIN_MAX_LIMIT} token ids.`,
      required: true,
      schema: {
        type: 'object',
        required: ['ids'],
        properties: {
          ids: { type: 'array', items: { type: 'string', format: 'uuid' } },
        },
      },
    },
    responses: [
      {
        status: 200,
        description: 'How many were revoked (unknown ids count for nothing).',
        schema: {
          type: 'object',
          required: ['revoked'],
          properties: { revoked: { type: 'integer' } },
        },
      },
      error(400, 'Not a list of 1 to 200 token ids.'),
      ...REFUSALS,
    ],
  },
  logoutUser: {
    summary: 'Log a user out everywhere (admin)',
    guarded: true,
    params: [{ name: 'userId', description: "The user's primary key." }],
    responses: [
      { status: 204, description: 'Every token of the user revoked.' },
      error(400, 'A user id the user key cannot hold.'),
      ...REFUSALS,
    ],
  },
};

/** `@nestjs/swagger`'s decorators used here beyond {@link SwaggerApi}. */
interface SwaggerAdminApi extends SwaggerApi {
  ApiExcludeController(): ClassDecorator;
  ApiExcludeEndpoint(): MethodDecorator;
}

const described = new WeakSet<object>();

/**
 * Describes the admin's API routes (tag `auth-admin`) and leaves the page and its files out of
 * the document; without the `admin` option (a `forRootAsync` app), leaves the whole controller
 * out. Without `@nestjs/swagger`, does nothing.
 */
async function describeAdminRoutes(
  mounted: abstract new (...args: never[]) => unknown,
  options: ResolvedKnoxOptions,
): Promise<boolean> {
  let swagger: SwaggerAdminApi;
  try {
    swagger = (await import('@nestjs/swagger')) as unknown as SwaggerAdminApi;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      return false;
    }
    throw error;
  }
  if (described.has(mounted)) {
    return true;
  }
  described.add(mounted);
  if (!options.admin) {
    swagger.ApiExcludeController()(mounted);
    return true;
  }
  const proto = KnoxAdminController.prototype as object;
  for (const name of ['page', 'script', 'style', 'icon']) {
    const descriptor = Object.getOwnPropertyDescriptor(proto, name)!;
    swagger.ApiExcludeEndpoint()(proto, name, descriptor);
  }
  applyKnoxOpenApi(swagger, KnoxAdminController, KNOX_ADMIN_ROUTE_DOCS);
  swagger.ApiTags(KNOX_ADMIN_OPENAPI_TAG)(mounted);
  return true;
}

/** Token of the provider below. */
export const KNOX_ADMIN_OPENAPI = Symbol('KNOX_ADMIN_OPENAPI');

/** Describes the admin's routes while the app is built (see `knoxOpenApiProvider`). */
export function knoxAdminOpenApiProvider(
  mounted: abstract new (...args: never[]) => unknown,
): Provider {
  return {
    provide: KNOX_ADMIN_OPENAPI,
    useFactory: (options: ResolvedKnoxOptions) =>
      describeAdminRoutes(mounted, options),
    inject: [KNOX_RESOLVED_OPTIONS],
  };
}

import {
  EXPIRY_SCHEMA,
  KNOX_LOGIN_BODY_SCHEMA,
  KNOX_LOGIN_RESPONSE_SCHEMA,
  KNOX_PERSONAL_TOKEN_BODY_SCHEMA,
  KNOX_PERSONAL_TOKEN_SCHEMA,
  KNOX_SESSION_SCHEMA,
  NO_STORE,
  ROTATE_RESPONSE_SCHEMA,
  UNAVAILABLE,
  error,
  type KnoxResponseDoc,
  type SchemaObject,
} from './knox-openapi.schemas.js';

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
      'The session keeps its name, device and creation time; the old token stops working (after `rotationGracePeriod`, if set).',
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

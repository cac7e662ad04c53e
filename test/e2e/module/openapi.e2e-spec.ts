import { beforeAll, describe, expect, it } from '@jest/globals';
import {
  DocumentBuilder,
  SwaggerModule,
  type OpenAPIObject,
} from '@nestjs/swagger';
import { addKnoxSecurity } from '../../../lib/index.js';
import { login, useTestApp } from '../../support/test-app.js';

type Operation = {
  summary?: string;
  tags?: string[];
  security?: Record<string, string[]>[];
  requestBody?: { required?: boolean; content: Record<string, any> };
  parameters?: { name: string; in: string; required?: boolean }[];
  responses: Record<
    string,
    { description: string; content?: Record<string, any>; headers?: any }
  >;
};

const ERROR_BODY = {
  type: 'object',
  required: ['statusCode', 'message'],
  properties: {
    statusCode: expect.objectContaining({ type: 'integer' }),
    message: expect.any(Object),
    error: expect.objectContaining({ type: 'string' }),
  },
};
const TOKEN_SECURITY = [{ Token: [] }, { Bearer: [] }];

/** The real routes of the module: no 405 handler among them. */
const ROUTES = [
  'post /auth/login',
  'post /auth/logout',
  'post /auth/logoutall',
  'post /auth/logoutothers',
  'post /auth/refresh',
  'post /auth/rotate',
  'get /auth/tokens',
  'post /auth/tokens',
  'patch /auth/tokens/{id}',
  'delete /auth/tokens/{id}',
];

describe.each(['express', 'fastify'] as const)(
  'OpenAPI document with @nestjs/swagger (%s)',
  (platform) => {
    const t = useTestApp({ platform });
    let doc: OpenAPIObject;
    const op = (method: string, path: string): Operation =>
      (doc.paths[path] as Record<string, Operation>)[method];
    const schemaOf = (o: Operation, status: number) =>
      o.responses[String(status)].content?.['application/json']?.schema;

    beforeAll(() => {
      const config = addKnoxSecurity(
        new DocumentBuilder().setTitle('test').setVersion('1'),
      ).build();
      doc = SwaggerModule.createDocument(t.app, config);
    });

    it('lists exactly the real routes, without the 405 answers', () => {
      const operations = Object.entries(doc.paths)
        .filter(([path]) => path.startsWith('/auth'))
        .flatMap(([path, item]) =>
          Object.keys(item)
            .filter((m) => /^(get|put|post|delete|patch|head|options)$/.test(m))
            .map((m) => `${m} ${path}`),
        );
      expect(operations.sort()).toEqual([...ROUTES].sort());
      // Every operation is described (a route added without an entry in the table fails here).
      for (const route of ROUTES) {
        const [method, path] = route.split(' ');
        expect(op(method, path).summary).toEqual(expect.any(String));
        expect(op(method, path).tags).toEqual(['auth']);
      }
    });

    it('still answers the other methods 405 with Allow', async () => {
      await t.createUser('alice');
      const token = await login(t, 'alice');
      const res = await t.http
        .get('/auth/login')
        .set('Authorization', `Token ${token}`);
      expect(res.status).toBe(405);
      expect(res.headers.allow).toBe('POST');
    });

    it('adds the Token, Bearer and Basic security schemes', () => {
      expect(doc.components?.securitySchemes).toEqual({
        Token: expect.objectContaining({
          type: 'apiKey',
          in: 'header',
          name: 'Authorization',
        }),
        Bearer: expect.objectContaining({
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'opaque',
        }),
        Basic: expect.objectContaining({ type: 'http', scheme: 'basic' }),
      });
    });

    it('requires a token on the guarded routes, and Basic or nothing on login', () => {
      for (const route of ROUTES.filter((r) => r !== 'post /auth/login')) {
        const [method, path] = route.split(' ');
        expect([route, op(method, path).security]).toEqual([
          route,
          TOKEN_SECURITY,
        ]);
        expect(op(method, path).responses['401']).toBeDefined();
        expect(schemaOf(op(method, path), 401)).toEqual(ERROR_BODY);
        expect(schemaOf(op(method, path), 503)).toEqual(ERROR_BODY);
      }
      expect(op('post', '/auth/login').security).toEqual([{ Basic: [] }, {}]);
    });

    it('describes the login body (JSON credentials or Basic) and its answers', () => {
      const loginOp = op('post', '/auth/login');
      expect(loginOp.requestBody?.required).toBe(false);
      const body = loginOp.requestBody?.content['application/json'].schema;
      expect(body).toMatchObject({
        type: 'object',
        properties: {
          username: { type: 'string' },
          password: { type: 'string' },
          name: { type: 'string' },
        },
      });
      expect(Object.keys(loginOp.responses).sort()).toEqual([
        '200',
        '400',
        '401',
        '403',
        '429',
        '503',
      ]);
      expect(schemaOf(loginOp, 200)).toMatchObject({
        type: 'object',
        required: ['expiry', 'id'],
        properties: { token: { type: 'string' }, id: { type: 'string' } },
      });
      expect(loginOp.responses['401'].headers).toHaveProperty(
        'WWW-Authenticate',
      );
      for (const status of [400, 401, 403, 429, 503]) {
        expect(schemaOf(loginOp, status)).toEqual(ERROR_BODY);
      }
    });

    it('describes the status codes and bodies of the session routes', () => {
      for (const route of [
        'post /auth/logout',
        'post /auth/logoutall',
        'post /auth/logoutothers',
        'delete /auth/tokens/{id}',
      ]) {
        const [method, path] = route.split(' ');
        expect([route, op(method, path).responses['204']]).toEqual([
          route,
          expect.objectContaining({ description: expect.any(String) }),
        ]);
        expect(op(method, path).responses['200']).toBeUndefined();
      }
      expect(schemaOf(op('post', '/auth/rotate'), 200)).toMatchObject({
        required: ['expiry', 'id'],
        properties: { token: { type: 'string' } },
      });
      const create = op('post', '/auth/tokens');
      expect(create.requestBody?.required).toBe(true);
      expect(
        create.requestBody?.content['application/json'].schema,
      ).toMatchObject({ required: ['name', 'abilities'] });
      expect(Object.keys(create.responses).sort()).toEqual(
        ['201', '400', '401', '403', '429', '503'].sort(),
      );
      const rename = op('patch', '/auth/tokens/{id}');
      expect(rename.parameters).toEqual([
        expect.objectContaining({ name: 'id', in: 'path', required: true }),
      ]);
      expect(schemaOf(rename, 404)).toEqual(ERROR_BODY);
      expect(schemaOf(op('post', '/auth/refresh'), 200)).toMatchObject({
        required: ['expiry'],
      });
      expect(schemaOf(op('delete', '/auth/tokens/{id}'), 404)).toEqual(
        ERROR_BODY,
      );
      expect(op('delete', '/auth/tokens/{id}').parameters).toEqual([
        expect.objectContaining({ name: 'id', in: 'path', required: true }),
      ]);
    });

    it('documents the bodies the routes really answer', async () => {
      await t.createUser('alice');
      const loggedIn = await t.http
        .post('/auth/login')
        .send({ username: 'alice', password: 'secret-password', name: 'cli' });
      expect(loggedIn.status).toBe(200);
      const loginSchema = schemaOf(op('post', '/auth/login'), 200);
      for (const key of Object.keys(loggedIn.body)) {
        expect(loginSchema.properties).toHaveProperty(key);
      }
      for (const key of loginSchema.required) {
        expect(loggedIn.body).toHaveProperty(key);
      }

      const listed = await t.http
        .get('/auth/tokens')
        .set('Authorization', `Token ${loggedIn.body.token}`);
      expect(listed.status).toBe(200);
      const item = schemaOf(op('get', '/auth/tokens'), 200);
      expect(item.type).toBe('array');
      expect(Object.keys(listed.body[0]).sort()).toEqual(
        Object.keys(item.items.properties).sort(),
      );
      expect([...item.items.required].sort()).toEqual(
        Object.keys(listed.body[0]).sort(),
      );

      const created = await t.http
        .post('/auth/tokens')
        .set('Authorization', `Token ${loggedIn.body.token}`)
        .send({
          name: 'deploy',
          abilities: ['posts:read'],
          password: 'secret-password',
        });
      expect(created.status).toBe(201);
      const createdSchema = schemaOf(op('post', '/auth/tokens'), 201);
      expect(Object.keys(created.body).sort()).toEqual(
        Object.keys(createdSchema.properties).sort(),
      );
      const renamed = await t.http
        .patch(`/auth/tokens/${created.body.id}`)
        .set('Authorization', `Token ${loggedIn.body.token}`)
        .send({ name: 'deploy-2' });
      expect(renamed.status).toBe(200);
      expect(Object.keys(renamed.body).sort()).toEqual(
        Object.keys(
          schemaOf(op('patch', '/auth/tokens/{id}'), 200).properties,
        ).sort(),
      );

      const refused = await t.http.post('/auth/logout');
      expect(refused.status).toBe(401);
      expect(Object.keys(refused.body).sort()).toEqual(
        ['error', 'message', 'statusCode'].sort(),
      );
      // Each error answer's example names its own status, as the body does.
      for (const [method, path, status, reason] of [
        ['post', '/auth/login', 400, 'Bad Request'],
        ['post', '/auth/login', 401, 'Unauthorized'],
        ['post', '/auth/logout', 503, 'Service Unavailable'],
      ] as const) {
        const { properties } = schemaOf(op(method, path), status);
        expect(properties.statusCode.example).toBe(status);
        expect(properties.error.example).toBe(reason);
      }
    });
  },
);

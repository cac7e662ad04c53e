import { beforeAll, describe, expect, it } from '@jest/globals';
import {
  DocumentBuilder,
  SwaggerModule,
  type OpenAPIObject,
} from '@nestjs/swagger';
import { addKnoxSecurity } from '../../../lib/index.js';
import { useTestApp, type TestAppOptions } from '../../support/test-app.js';

const ADMIN_ROUTES = [
  'get /auth/admin/tokens',
  'delete /auth/admin/tokens/{id}',
  'post /auth/admin/tokens/revoke',
  'post /auth/admin/users/{userId}/logoutall',
];

type Operation = {
  summary?: string;
  tags?: string[];
  security?: Record<string, string[]>[];
  responses: Record<string, { content?: Record<string, any> }>;
};

function documentOf(options: TestAppOptions) {
  const t = useTestApp(options);
  let doc: OpenAPIObject;
  beforeAll(() => {
    doc = SwaggerModule.createDocument(
      t.app,
      addKnoxSecurity(new DocumentBuilder().setTitle('t')).build(),
    );
  });
  const operations = (prefix: string) =>
    Object.entries(doc.paths)
      .filter(([path]) => path.startsWith(prefix))
      .flatMap(([path, item]) =>
        Object.keys(item)
          .filter((m) => /^(get|put|post|delete|patch)$/.test(m))
          .map((m) => `${m} ${path}`),
      )
      .sort();
  const op = (route: string): Operation => {
    const [method, path] = route.split(' ');
    return (doc.paths[path] as Record<string, Operation>)[method];
  };
  return { operations, op };
}

describe.each(['express', 'fastify'] as const)(
  'OpenAPI with the admin on (%s)',
  (platform) => {
    const { operations, op } = documentOf({
      platform,
      knox: { admin: { isAdmin: () => true } },
    });

    it('documents the admin API under its own tag, apart from the users’ routes, and leaves the page out', () => {
      expect(operations('/auth/admin')).toEqual([...ADMIN_ROUTES].sort());
      for (const route of ADMIN_ROUTES) {
        expect([route, op(route).tags]).toEqual([route, ['auth-admin']]);
        expect(op(route).summary).toMatch(/\(admin\)$/);
        expect(op(route).security).toEqual([{ Token: [] }, { Bearer: [] }]);
        for (const status of ['401', '403', '404', '503']) {
          expect([route, status, !!op(route).responses[status]]).toEqual([
            route,
            status,
            true,
          ]);
        }
      }
      const userRoutes = operations('/auth').filter(
        (r) => !r.includes('/auth/admin'),
      );
      expect(userRoutes).toHaveLength(10);
      for (const route of userRoutes) {
        expect([route, op(route).tags]).toEqual([route, ['auth']]);
      }
      const item = op('get /auth/admin/tokens').responses['200'].content![
        'application/json'
      ].schema.properties.items.items;
      expect(Object.keys(item.properties)).toEqual(
        expect.arrayContaining([
          'id',
          'userId',
          'user',
          'name',
          'kind',
          'abilities',
          'createdAt',
          'expiresAt',
          'lastUsedAt',
          'ip',
          'userAgent',
          'retiredAt',
        ]),
      );
      expect(JSON.stringify(item)).not.toMatch(/digest|tokenKey/);
    });
  },
);

describe('OpenAPI through forRootAsync without the admin option', () => {
  const { operations } = documentOf({ async: true });

  it('lists no admin route', () => {
    expect(operations('/auth/admin')).toEqual([]);
    expect(operations('/auth')).toHaveLength(10);
  });
});

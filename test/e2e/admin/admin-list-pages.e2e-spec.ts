/**
 * The admin list's keyset pages on every database: each token listed once while others log in
 * and out between pages, and by expiry across tokens that never expire (sorted as the latest).
 */
import { describe, expect, it } from '@jest/globals';
import { KnoxTokenService } from '../../../lib/index.js';
import { login, useTestApp, type TestApp } from '../../support/test-app.js';
import { bearer } from '../../support/cache.js';
import type { TestUser } from '../../support/fixtures.js';

const admin = { isAdmin: (user: TestUser) => user.username === 'root' };

async function seed(t: TestApp) {
  const root = await t.createUser('root');
  const alice = await t.createUser('alice');
  const bob = await t.createUser('bob');
  const rootToken = await login(t, 'root');
  return { root, alice, bob, rootToken };
}

type Item = { id: string };

describe('admin list: keyset pages under concurrent logins', () => {
  const t = useTestApp({ knox: { admin } }, seed);

  it.each(['-created', 'created', '-lastUsedAt', 'expiry'])(
    'sort %s: every token that existed is listed once, none twice, while others log in and out',
    async (sort) => {
      const existing = new Set<string>();
      for (let i = 0; i < 30; i++) {
        await login(t, i % 2 ? 'alice' : 'bob');
        if (i % 3 === 0) t.clock.advance(1); // ties in the sort key, broken by id
      }
      for (const row of await t.tokenRows()) existing.add(row.id);
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const query: string = `?sort=${sort}&limit=7${cursor ? `&cursor=${cursor}` : ''}`;
        const res: { status: number; body: any } = await t.http
          .get(`/auth/admin/tokens${query}`)
          .set(bearer(t.seeded.rootToken));
        expect(res.status).toBe(200);
        expect(res.body.items.length).toBeLessThanOrEqual(7);
        seen.push(...res.body.items.map((i: Item) => i.id));
        cursor = res.body.nextCursor;
        pages++;
        // Between pages: new logins (concurrently), and the last listed token revoked.
        await Promise.all([
          login(t, 'alice'),
          login(t, 'bob'),
          login(t, 'root'),
        ]);
        const last = res.body.items.at(-1) as Item | undefined;
        if (last && pages % 2 === 0) {
          await t.app.get(KnoxTokenService).revokeTokens([last.id]);
        }
        t.clock.advance(1);
      } while (cursor);
      expect(new Set(seen).size).toBe(seen.length);
      for (const id of existing) {
        expect(seen).toContain(id);
      }
      expect(pages).toBeGreaterThanOrEqual(5);
    },
  );
});

describe('admin list: pages by expiry across tokens that never expire', () => {
  const t = useTestApp({ knox: { admin } }, seed);

  it.each(['expiry', '-expiry'])(
    'sort %s: each token once, the never-expiring ones after (expiry) or before (-expiry) the others',
    async (sort) => {
      const service = t.app.get(KnoxTokenService);
      const never = new Set<string>();
      for (let i = 0; i < 6; i++) {
        never.add(
          (await service.create(t.seeded.alice, { ttl: null })).record.id,
        );
        await login(t, 'bob');
        t.clock.advance(1000);
      }
      const total = (await t.tokenRows()).length;
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res: { status: number; body: any } = await t.http
          .get(
            `/auth/admin/tokens?sort=${sort}&limit=4${cursor ? `&cursor=${cursor}` : ''}`,
          )
          .set(bearer(t.seeded.rootToken));
        expect(res.status).toBe(200);
        seen.push(...res.body.items.map((i: Item) => i.id));
        cursor = res.body.nextCursor;
      } while (cursor);
      expect(seen).toHaveLength(total);
      expect(new Set(seen).size).toBe(total);
      const flags = seen.map((id) => never.has(id));
      const expected = [
        ...Array(total - never.size).fill(false),
        ...Array(never.size).fill(true),
      ];
      expect(flags).toEqual(sort === 'expiry' ? expected : expected.reverse());
    },
  );
});

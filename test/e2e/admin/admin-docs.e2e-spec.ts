import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { tokenKindSql } from '../../../lib/store/migrations/knox-token-kind.migration.js';

const page = readFileSync(
  new URL('../../../docs/admin.md', import.meta.url),
  'utf8',
);

describe('docs/admin.md', () => {
  it("prints the kind migration's SQL as the migration runs it", () => {
    const [block] = [...page.matchAll(/```sql\n([\s\S]*?)```/g)].map(
      (m) => m[1],
    );
    const sql = tokenKindSql({ schema: undefined, table: 'knox_authtoken' });
    expect(block).toBe(
      `${sql.up.join(';\n')};\n-- down:\n${sql.down.join(';\n')};\n`,
    );
  });

  it('names every query parameter and item field the API has', () => {
    for (const name of [
      'userId',
      'search',
      'kind',
      'active',
      'sort',
      'limit',
      'cursor',
      'expiresAt',
      'lastUsedAt',
      'retiredAt',
      'knox:admin',
      'KnoxTokenKind9000000000006',
    ]) {
      expect([name, page.includes(`\`${name}\``)]).toEqual([name, true]);
    }
  });
});

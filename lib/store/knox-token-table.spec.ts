import { describe, expect, it } from '@jest/globals';
import { knoxTableNames, splitTablePath } from './knox-token-table.js';

describe('knoxTableNames', () => {
  it("layout 'knox': PostgreSQL's own style, from the table part of a qualified name", () => {
    expect(knoxTableNames('app.tokens', 'knox')).toEqual({
      primaryKey: 'tokens_pkey',
      idUnique: 'tokens_id_key',
      foreignKey: 'tokens_user_id_fkey',
      indexes: [
        { name: 'tokens_token_key_idx', column: 'token_key' },
        { name: 'tokens_expiry_idx', column: 'expiry' },
        { name: 'tokens_user_id_idx', column: 'user_id' },
      ],
    });
  });

  it("layout 'django': the names django-rest-knox's migrations gave knox_authtoken", () => {
    expect(knoxTableNames('knox_authtoken', 'django')).toEqual({
      primaryKey: 'knox_authtoken_pkey',
      idUnique: 'knox_authtoken_id_key',
      foreignKey: 'knox_authtoken_user_id_e5a5d899_fk_auth_user_id',
      indexes: [
        { name: 'knox_authtoken_digest_188c7e77_like', column: 'digest' },
        { name: 'knox_authtoken_token_key_8f4f7d47', column: 'token_key' },
        { name: 'knox_authtoken_token_key_8f4f7d47_like', column: 'token_key' },
        { name: 'knox_authtoken_user_id_e5a5d899', column: 'user_id' },
        { name: 'knox_authtoken_expiry_idx', column: 'expiry' },
      ],
    });
  });

  it("layout 'django': the foreign key names the user table it references", () => {
    const names = knoxTableNames('knox_authtoken', 'django', {
      table: 'accounts_user',
      column: 'uuid',
    });
    expect(names.foreignKey).toMatch(
      /^knox_authtoken_user_id_[0-9a-f]{8}_fk_accounts_user_uuid$/,
    );
    expect(names.indexes.map((index) => index.name)).toEqual(
      knoxTableNames('knox_authtoken', 'django').indexes.map((i) => i.name),
    );
  });
});

describe('splitTablePath', () => {
  it('splits at the last dot; the default schema applies to an unqualified name', () => {
    expect(splitTablePath('auth.tokens', 'public')).toEqual({
      schema: 'auth',
      table: 'tokens',
    });
    expect(splitTablePath('tokens', 'public')).toEqual({
      schema: 'public',
      table: 'tokens',
    });
  });
});

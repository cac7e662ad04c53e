/**
 * The django-rest-knox fixture recorded from the real django-rest-knox 5.0.2 (see its README.md):
 * `users.json`, `tokens.json`, `schema.sql`, `data.sql`, read as they are.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One entry of `users.json`. */
export interface DjangoFixtureUser {
  id: number;
  username: string;
  email: string;
  password_plaintext: string | null;
  password: string;
  algorithm: string | null;
  usable_password: boolean;
  is_active: boolean;
  is_staff: boolean;
  is_superuser: boolean;
  last_login: string | null;
  date_joined: string;
  expected_basic_login_status: number;
}

/** One entry of `tokens.json`. */
export interface DjangoFixtureToken {
  label: string;
  username: string;
  user_id: number;
  token: string;
  settings: 'main' | 'prefixed';
  login_response: { expiry: string | null; token: string } | null;
  row: {
    digest: string;
    token_key: string;
    user_id: number;
    created: string;
    expiry: string | null;
  };
  expired: boolean;
  revoked: boolean;
  user_inactive: boolean;
  expected_status: number;
  expected_body: Record<string, unknown>;
}

/**
 * The fixture folder: `<repo>/../shared/fixtures/django-knox` (a checkout next to shared/, as CI
 * lays it out), else `/work/shared/fixtures/django-knox`.
 */
export function djangoFixturePath(file = ''): string {
  const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const candidates = [
    join(repo, '..', 'shared', 'fixtures', 'django-knox'),
    '/work/shared/fixtures/django-knox',
  ];
  const dir = candidates.find((d) => existsSync(join(d, 'users.json')));
  if (!dir) {
    throw new Error(
      `The django-knox fixture is missing; looked in ${candidates.join(' and ')}.`,
    );
  }
  return join(dir, file);
}

export function readDjangoFixtureFile(file: string): string {
  return readFileSync(djangoFixturePath(file), 'utf8');
}

export function djangoFixtureUsers(): DjangoFixtureUser[] {
  return JSON.parse(readDjangoFixtureFile('users.json'))
    .users as DjangoFixtureUser[];
}

export function djangoFixtureTokens(): DjangoFixtureToken[] {
  return JSON.parse(readDjangoFixtureFile('tokens.json'))
    .tokens as DjangoFixtureToken[];
}

/** The PBKDF2 iteration count of the Django that made the fixture (3.2: 260 000). */
export function djangoFixtureIterations(): number {
  return JSON.parse(readDjangoFixtureFile('users.json')).produced_by
    .pbkdf2_sha256_iterations as number;
}

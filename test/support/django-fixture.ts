/**
 * The django-rest-knox fixture recorded from the real django-rest-knox 5.0.2 (see its README.md):
 * `users.json`, `tokens.json`, `schema.sql`, `data.sql`, read as they are.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { djangoFixtureDir } from './schema.js';

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
  /** The row knox left; `null` for a logged-out token (logout deletes the row). */
  row: {
    digest: string;
    token_key: string;
    user_id: number;
    created: string;
    expiry: string | null;
  } | null;
  expired: boolean;
  revoked: boolean;
  user_inactive: boolean;
  expected_status: number;
  expected_body: Record<string, unknown>;
}

/** A file of the fixture folder (`<repo>/../shared/fixtures/django-knox`, else /work/shared/…). */
export function readDjangoFixtureFile(file: string): string {
  return readFileSync(join(djangoFixtureDir(), file), 'utf8');
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

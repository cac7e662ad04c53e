/**
 * The token admin page in a real browser: Debian's Chromium (`/usr/bin/chromium`, which `.ci/run`
 * installs when missing) driven by playwright-core, against a real app on a real port and the
 * real PostgreSQL. Skipped, saying so, only when Chromium is not installed.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { BrowserContext, ConsoleMessage, Page } from 'playwright-core';
import { KnoxTokenService } from '../../../lib/index.js';
import { createTestApp, login, type TestApp } from '../../support/test-app.js';
import { bearer, until } from '../../support/cache.js';
import type { TestUser } from '../../support/fixtures.js';

const CHROMIUM = '/usr/bin/chromium';
const HOSTILE = '<img src=x onerror="window.__pwned=1">';
const PASSWORD = 'secret-password';

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  console.warn(
    `admin-page.e2e-spec: SKIPPED — ${CHROMIUM} is missing (apt-get install -y chromium; .ci/run installs it).`,
  );
}
const suite = haveChromium ? describe : describe.skip;

suite(
  haveChromium
    ? 'the admin page in Chromium'
    : `the admin page in Chromium — SKIPPED: ${CHROMIUM} is missing`,
  () => {
    let t: TestApp;
    let origin: string;
    let context: BrowserContext;
    let profile: string;
    let aliceToken: string;

    beforeAll(async () => {
      t = await createTestApp({
        knox: { admin: { isAdmin: (u: TestUser) => u.username === 'root' } },
      });
      const server = (await t.app.listen(0, '127.0.0.1')) as Server;
      origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const root = await t.createUser('root');
      await t.createUser('alice');
      const bob = await t.createUser('bob');
      expect(root.id).toBeDefined();
      aliceToken = await login(t, 'alice', PASSWORD, { name: 'alice-laptop' });
      await t.app.get(KnoxTokenService).create(bob, { name: HOSTILE });
      await t.app.get(KnoxTokenService).create(bob, { name: 'bob-phone' });
      const { chromium } = await import('playwright-core');
      profile = mkdtempSync(join(tmpdir(), 'knox-admin-chromium-'));
      context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      });
    }, 90_000);

    afterAll(async () => {
      await context?.close();
      await t?.close();
      if (profile) rmSync(profile, { recursive: true, force: true });
    });

    /** A new tab whose console errors (CSP violations included) and page errors are kept. */
    async function open(): Promise<{ page: Page; errors: string[] }> {
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('console', (message: ConsoleMessage) => {
        if (message.type() === 'error' || message.type() === 'warning') {
          errors.push(`${message.type()}: ${message.text()}`);
        }
      });
      page.on('pageerror', (error) => errors.push(`pageerror: ${error}`));
      page.on('response', (response) => {
        if (response.status() >= 400) {
          errors.push(`HTTP ${response.status()} ${response.url()}`);
        }
      });
      await page.goto(`${origin}/auth/admin`);
      return { page, errors };
    }

    /** Polls `read` until its value is `expected` (or the check passes), then asserts it. */
    async function eventually<T>(
      read: () => Promise<T>,
      expected: T | ((value: T) => boolean),
    ): Promise<void> {
      const ok = (value: T) =>
        typeof expected === 'function'
          ? (expected as (value: T) => boolean)(value)
          : value === expected;
      let last: T | undefined;
      await until(async () => ok((last = await read())), 'the page').catch(
        () => undefined,
      );
      if (typeof expected === 'function') {
        expect([last, ok(last as T)]).toEqual([last, true]);
      } else {
        expect(last).toEqual(expected);
      }
    }

    async function signIn(page: Page, username: string): Promise<void> {
      await page.getByLabel('Username').fill(username);
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Sign in' }).click();
    }

    it('signs in, lists, searches and revokes a row; that token is refused over HTTP', async () => {
      const { page, errors } = await open();
      await signIn(page, 'root');
      const rows = page.locator('#rows tr');
      await eventually(() => rows.count(), 4);
      // The token is kept for this tab only.
      expect(
        await page.evaluate(() => ({
          local: (globalThis as any).localStorage.length,
          session: Object.keys((globalThis as any).sessionStorage),
        })),
      ).toEqual({ local: 0, session: ['nestjs-knox-admin-token'] });

      // The hostile name is shown as text and ran nothing.
      await eventually(
        () => page.getByRole('cell', { name: HOSTILE, exact: true }).count(),
        1,
      );
      expect(await page.locator('#rows img').count()).toBe(0);
      expect(
        await page.evaluate(() => (globalThis as any).__pwned),
      ).toBeUndefined();

      await page.getByLabel('Search').fill('ALICE-lap');
      await page.getByLabel('Search').press('Enter');
      await eventually(() => rows.count(), 1);
      expect(await rows.first().textContent()).toContain('alice-laptop');

      expect((await t.http.get('/me').set(bearer(aliceToken))).status).toBe(
        200,
      );
      await page
        .getByRole('button', { name: 'Revoke alice-laptop of alice' })
        .click();
      const dialog = page.getByRole('dialog');
      await eventually(() => dialog.isVisible(), true);
      await dialog.getByRole('button', { name: 'Revoke' }).click();
      await eventually(
        () => page.getByRole('status').textContent(),
        (text) => String(text).includes('Revoked alice-laptop of alice.'),
      );
      await eventually(() => rows.count(), 0);
      expect((await t.http.get('/me').set(bearer(aliceToken))).status).toBe(
        401,
      );

      // Cancelling a confirmation revokes nothing.
      await page.getByLabel('Search').fill('bob-phone');
      await page.getByRole('button', { name: 'Apply' }).click();
      await eventually(() => rows.count(), 1);
      await page
        .getByRole('button', { name: 'Log bob out everywhere' })
        .click();
      await dialog.getByRole('button', { name: 'Cancel' }).click();
      expect(
        (await t.tokenRows()).filter((r) => r.name === 'bob-phone'),
      ).toHaveLength(1);
      expect(errors).toEqual([]);
      await page.close();
    }, 60_000);

    it('works from the keyboard: sign in, confirm "log this user out everywhere" with Enter', async () => {
      const { page, errors } = await open();
      await eventually(
        () =>
          page.evaluate(() => (globalThis as any).document.activeElement?.id),
        'username',
      );
      await page.keyboard.type('root');
      await page.keyboard.press('Tab');
      await page.keyboard.type(PASSWORD);
      await page.keyboard.press('Enter');
      const rows = page.locator('#rows tr');
      await eventually(
        () => rows.count(),
        (n) => n > 0,
      );
      await page.getByLabel('Search').focus();
      await page.keyboard.type('bob');
      await page.keyboard.press('Enter');
      await eventually(() => rows.count(), 2);
      await page
        .getByRole('button', { name: 'Log bob out everywhere' })
        .first()
        .focus();
      await page.keyboard.press('Enter');
      // The dialog opens with Cancel focused: Tab to the confirming button, Enter.
      await page.keyboard.press('Tab');
      await page.keyboard.press('Enter');
      await eventually(
        () => page.getByRole('status').textContent(),
        (text) => String(text).includes('bob is logged out everywhere.'),
      );
      await eventually(() => rows.count(), 0);
      expect(
        (await t.tokenRows()).filter((r) => r.name === 'bob-phone'),
      ).toHaveLength(0);
      expect(errors).toEqual([]);
      await page.close();
    }, 60_000);

    it('a non-admin who signs in sees a message and no tokens', async () => {
      const { page, errors } = await open();
      await signIn(page, 'alice');
      await eventually(
        () => page.getByRole('alert').textContent(),
        'This account may not use the token admin.',
      );
      expect(await page.locator('#tokens-section').isVisible()).toBe(false);
      expect(await page.locator('#rows tr').count()).toBe(0);
      // The browser logs the refused list request (403) itself; nothing else.
      expect(errors.filter((e) => !/403/.test(e))).toEqual([]);
      expect(errors.length).toBeLessThanOrEqual(2);
      await page.close();
    }, 60_000);
  },
);

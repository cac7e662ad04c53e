import { readFileSync } from 'node:fs';

/** The page's files, shipped in the package beside this module (`dist/admin/page/`). */
const PAGE_DIR = new URL('./page/', import.meta.url);

/**
 * The page's policy: its own script and style only (no inline script or style, no other origin),
 * requests to its own origin only, no framing, no form posts, no `<base>`.
 */
export const KNOX_ADMIN_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "form-action 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The headers every file of the page is served with. */
export const KNOX_ADMIN_PAGE_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': KNOX_ADMIN_CSP,
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
};

/** The page's files by the name they are served under, with their types. */
export const KNOX_ADMIN_ASSETS = {
  'knox-admin.js': 'text/javascript; charset=utf-8',
  'knox-admin.css': 'text/css; charset=utf-8',
  'knox-admin.svg': 'image/svg+xml',
} as const;

/** A file of the page by the name it is served under. */
export type KnoxAdminAsset = keyof typeof KNOX_ADMIN_ASSETS;

const files = new Map<string, string>();

function read(name: string): string {
  let text = files.get(name);
  if (text === undefined) {
    text = readFileSync(new URL(name, PAGE_DIR), 'utf8');
    files.set(name, text);
  }
  return text;
}

/**
 * The page's HTML for a request to `url`: its script and style are linked relative to it, so
 * that the page works under any global prefix, with or without a trailing slash.
 */
export function adminPageHtml(url: string): string {
  const path = url.split('?')[0];
  return read('knox-admin.html').replaceAll(
    '%BASE%',
    path.endsWith('/') ? './' : 'admin/',
  );
}

/** The text of one of the page's static files. */
export function adminAsset(name: KnoxAdminAsset): string {
  return read(name);
}

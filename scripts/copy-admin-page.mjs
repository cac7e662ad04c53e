// Copies the token admin page's static files (HTML, JS, CSS: lib/admin/page/) next to the compiled
// admin module in dist/, which serves them from there (`npm run build` runs this after tsc).
import { cpSync, mkdirSync } from 'node:fs';

const from = new URL('../lib/admin/page/', import.meta.url);
const to = new URL('../dist/admin/page/', import.meta.url);
mkdirSync(to, { recursive: true });
cpSync(from, to, { recursive: true });

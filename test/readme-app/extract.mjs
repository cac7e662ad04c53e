// Writes the Quick start app of docs/getting-started.md into a folder: every ```ts block of its
// "## Quick start" section (up to the next heading) whose first line names its file
// (`// users/user.entity.ts`) goes to <dir>/src/<file>.
// Fails when the section has no such block, or a block names no file: the Quick start must stay
// an app that compiles as it is printed.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const [page, dir] = process.argv.slice(2);
const text = readFileSync(page, 'utf8');
const start = text.indexOf('\n## Quick start\n');
const end = start < 0 ? -1 : text.slice(start + 1).search(/\n##+ /) + start + 1;
if (start < 0 || end <= start) {
  throw new Error(
    `${page}: no "## Quick start" section followed by another heading`,
  );
}
const blocks = [...text.slice(start, end).matchAll(/```ts\n([\s\S]*?)```/g)];
if (blocks.length === 0) {
  throw new Error(`${page}: the Quick start has no ts blocks`);
}
for (const [, code] of blocks) {
  const file = /^\/\/ ([\w./-]+\.ts)/.exec(code)?.[1];
  if (!file) {
    throw new Error(
      `a Quick start block does not start with "// <file>.ts":\n${code}`,
    );
  }
  const path = join(dir, 'src', file);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, code);
  console.log(`src/${file}`);
}

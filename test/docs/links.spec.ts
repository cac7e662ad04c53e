/**
 * Every relative link and `#anchor` in README.md, SECURITY.md and docs/*.md resolves: the file
 * (or folder) exists, and an anchor names a heading of the page it points to (GitHub's slugs).
 * Links to other sites are not fetched. And the maps stay maps: every docs page is in
 * docs/README.md (the index), and README.md stays a front door (issue 24: at most 300 lines).
 */
import { describe, expect, it } from '@jest/globals';
import { existsSync, statSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import {
  docPages,
  fromRoot,
  headingAnchors,
  links,
  readPage,
  ROOT,
} from './markdown.js';

/** Why `target`, linked from `page`, does not resolve; null when it does. */
function brokenBecause(page: string, target: string): string | null {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) {
    return null; // https:, mailto:, …
  }
  const hash = target.indexOf('#');
  const path = hash < 0 ? target : target.slice(0, hash);
  const anchor = hash < 0 ? null : decodeURIComponent(target.slice(hash + 1));
  const file = path
    ? normalize(join(ROOT, dirname(page), decodeURIComponent(path)))
    : join(ROOT, page);
  if (!file.startsWith(ROOT)) {
    return `${fromRoot(file)} is outside the repository`;
  }
  if (!existsSync(file)) {
    return `${fromRoot(file)} does not exist`;
  }
  if (anchor === null) {
    return null;
  }
  if (statSync(file).isDirectory() || !file.endsWith('.md')) {
    return `an anchor on ${fromRoot(file)}, which is not a Markdown page`;
  }
  const anchors = headingAnchors(readPage(fromRoot(file)));
  return anchors.has(anchor)
    ? null
    : `${fromRoot(file)} has no heading #${anchor} (it has ${[...anchors].map((a) => `#${a}`).join(', ')})`;
}

describe('links in the docs', () => {
  it.each(docPages())(
    'every relative link and anchor of %s resolves',
    (page) => {
      const broken = links(page)
        .map((link) => ({ link, why: brokenBecause(page, link.target) }))
        .filter(({ why }) => why !== null)
        .map(
          ({ link, why }) => `${page}:${link.line}: (${link.target}): ${why}`,
        );
      expect(broken).toEqual([]);
    },
  );

  it('reads links, code spans and anchors as GitHub does', () => {
    const page = [
      '# Top',
      '## `POST /auth/logout` → 204',
      '## Options from `@nestjs/config`',
      '## Top',
      'See [a](b.md#c) and `[not](a-link.md)`.',
      '```md',
      '[nor](this.md)',
      '## not a heading',
      '```',
    ].join('\n');
    expect([...headingAnchors(page)]).toEqual([
      'top',
      'post-authlogout--204',
      'options-from-nestjsconfig',
      'top-1',
    ]);
    expect(links('x.md', page)).toEqual([
      { page: 'x.md', line: 5, target: 'b.md#c' },
    ]);
    expect(brokenBecause('README.md', 'docs/README.md')).toBeNull();
    expect(brokenBecause('README.md', 'docs/nowhere.md')).toMatch(
      /does not exist/,
    );
    expect(brokenBecause('docs/README.md', '../SECURITY.md#nowhere')).toMatch(
      /has no heading #nowhere/,
    );
  });
});

describe('the maps of the docs', () => {
  const pages = docPages().filter(
    (page) => page.startsWith('docs/') && page !== 'docs/README.md',
  );
  const linked = (from: string) =>
    new Set(
      links(from).map((link) =>
        normalize(join(dirname(from), link.target.replace(/#.*$/, ''))),
      ),
    );

  it('docs/README.md, the index, links every page of docs/', () => {
    const targets = linked('docs/README.md');
    expect(pages.filter((page) => !targets.has(page))).toEqual([]);
  });

  it('README.md is at most 300 lines: the rest goes to a page of docs/', () => {
    expect(readPage('README.md').split('\n').length).toBeLessThanOrEqual(300);
  });
});

/**
 * What the docs checks read from the Markdown pages: the pages themselves, their code blocks,
 * their links and the anchors GitHub gives their headings. A small reader of the Markdown this
 * repository writes (ATX headings, fenced code blocks, inline links), not a full parser.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The pages the checks cover: README.md, SECURITY.md and every docs/*.md, as paths from ROOT. */
export function docPages(): string[] {
  const docs = readdirSync(join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`);
  return ['README.md', 'SECURITY.md', ...docs];
}

export function readPage(page: string): string {
  return readFileSync(join(ROOT, page), 'utf8');
}

export interface CodeBlock {
  /** The page, from ROOT. */
  page: string;
  /** The 1-based line of the block's first code line (after the fence). */
  line: number;
  /** The info string after the fence, e.g. `ts`. */
  info: string;
  code: string;
}

/** Every fenced code block of a page, with the line it starts on. */
export function codeBlocks(page: string, text = readPage(page)): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^(```+|~~~+)\s*(.*)$/.exec(lines[i]);
    if (!open) {
      continue;
    }
    const fence = open[1];
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !lines[j].startsWith(fence)) {
      body.push(lines[j]);
      j++;
    }
    blocks.push({
      page,
      line: i + 2,
      info: open[2].trim(),
      code: body.join('\n') + '\n',
    });
    i = j;
  }
  return blocks;
}

/** The page's lines outside fenced code blocks, each with its 1-based line number. */
export function proseLines(text: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  let fence: string | null = null;
  text.split('\n').forEach((line, i) => {
    const marker = /^(```+|~~~+)/.exec(line)?.[1];
    if (fence) {
      if (marker && line.startsWith(fence)) {
        fence = null;
      }
    } else if (marker) {
      fence = marker;
    } else {
      out.push({ line: i + 1, text: line });
    }
  });
  return out;
}

/**
 * The anchors GitHub gives a page's headings (github-slugger's rule): the heading's text as
 * rendered, lower-cased, with every character but letters, digits, `_`, `-` and spaces dropped
 * and each space made a `-`; a repeated slug gets `-1`, `-2`, …
 */
export function headingAnchors(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const { text: line } of proseLines(text)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)?.[1];
    if (heading === undefined) {
      continue;
    }
    const rendered = heading
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1') // a link reads as its text
      .replace(/<[^>]+>/g, ''); // HTML tags are not text
    const slug = rendered
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\p{M}\p{Pc}\- ]/gu, '')
      .replace(/ /g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

export interface Link {
  page: string;
  line: number;
  target: string;
}

/** The inline links `[text](target)` of a page's prose, code spans and fenced blocks left out. */
export function links(page: string, text = readPage(page)): Link[] {
  const out: Link[] = [];
  for (const { line, text: prose } of proseLines(text)) {
    const withoutCode = prose.replace(/(`+)[^`]*?\1/g, '');
    for (const m of withoutCode.matchAll(
      /\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g,
    )) {
      out.push({ page, line, target: m[1] });
    }
  }
  return out;
}

/** `page` as a path from ROOT, for messages. */
export function fromRoot(path: string): string {
  return relative(ROOT, path) || '.';
}

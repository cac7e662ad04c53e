/**
 * Every ```ts block of README.md, SECURITY.md and docs/*.md type-checks against the library (how
 * blocks are read, files and snippets: ./code-blocks.ts). One compilation, for all pages and for
 * an example page with four mistakes that the checker must find.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { docPages } from './markdown.js';
import {
  type BlockProblem,
  pageFiles,
  snippetFile,
  typeCheck,
  type VirtualFile,
} from './code-blocks.js';

const PAGES = docPages();

function describeProblem(p: BlockProblem): string {
  return `${p.page}:${p.line ?? '?'}: ${p.message}`;
}

const EXAMPLE = 'docs/example.md';
const block = (code: string, line = 10) => ({
  page: EXAMPLE,
  line,
  info: 'ts',
  code,
});
/** A page with four mistakes, compiled with the real pages: the checker must find them. */
const EXAMPLE_BLOCKS = [
  block(
    [
      "import { KnoxModule } from 'nestjs-knox';",
      '',
      'KnoxModule.forRoot({',
      '  userEntity: User,',
      '  validateUser,',
      "  tokenTtl: '10h',",
      '});',
      '',
    ].join('\n'),
    20,
  ),
  block('notDeclaredAnywhere.revoke();\n', 40),
  block("// main.ts\nimport { nothing } from './nowhere.js';\n", 50),
  // Two variants of one file: each compiles in a folder of its own.
  block('// variant.ts\nexport const a: number = 1;\n', 60),
  block("// variant.ts\nexport const a: number = 'two';\n", 70),
];

let problems: BlockProblem[] = [];
let files: VirtualFile[] = [];

beforeAll(() => {
  files = PAGES.flatMap((page) => pageFiles(page));
  problems = typeCheck([...files, ...pageFiles(EXAMPLE, EXAMPLE_BLOCKS)]);
}, 120_000);

describe('the ts code blocks of the docs', () => {
  it('are all read as a file or as a snippet of some shape', () => {
    const unread = files
      .filter((f) => f.shape === 'none')
      .map((f) => `${f.page}:${f.lines[0]?.from}: parses as no shape`);
    expect(unread).toEqual([]);
  });

  it.each(PAGES)('of %s type-check', (page) => {
    const own = new Set(
      problems.filter((p) => p.page === page).map(describeProblem),
    );
    expect([...own]).toEqual([]);
  });

  it('leave no problem outside the pages', () => {
    const elsewhere = problems
      .filter((p) => !PAGES.includes(p.page) && p.page !== EXAMPLE)
      .map(describeProblem);
    expect([...new Set(elsewhere)]).toEqual([]);
  });
});

describe('the docs code-block checker', () => {
  it('reads each snippet in the first shape that parses', () => {
    const shape = (code: string) => snippetFile(block(code), '/x.ts').shape;
    expect(shape('await this.knox.revokeAll(user.id);\n')).toBe('statements');
    expect(shape('export class A {}\n')).toBe('module');
    expect(
      shape('KnoxModule.forRoot({ userEntity: User, validateUser }),\n'),
    ).toBe('array elements');
    expect(shape('useFactory: () => ({ validateUser }),\n')).toBe(
      'object members',
    );
    expect(shape('async handle(a: string) {\n  return a;\n}\n')).toBe(
      'class members',
    );
  });

  it('finds wrong types, an unknown name and a missing module, at their page lines', () => {
    const found = problems
      .filter((p) => p.page === EXAMPLE)
      .map((p) => `${p.line}: ${p.message.slice(0, 6)}`);
    // A file copied into a variant's folder reports its problem again: once is enough.
    expect([...new Set(found)].sort()).toEqual(
      ['25: TS2322', '40: TS2304', '51: TS2307', '71: TS2322'].sort(),
    );
  });
});

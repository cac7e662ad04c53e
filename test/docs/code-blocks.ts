/**
 * Type-checks the ```ts blocks of README.md, SECURITY.md and docs/*.md against the library's
 * sources, in memory (nothing is written to disk). How a block is read:
 *
 * - **A file**: a block whose first line names it (`// users/user.entity.ts`, `// main.ts: …`)
 *   is that file of an app, compiled exactly as printed. Each page gets its own app folder,
 *   which starts as the Quick start app of docs/getting-started.md (so `./users/user.entity.js`
 *   and `./app.module.js` resolve) plus FIXTURES (files a page names but does not show); the
 *   page's own files replace or join those.
 * - **A snippet**: any other block. Its `import` lines go to the top, and the rest is read as
 *   the first of these that parses: statements (inside an async method, so `this.knox` and
 *   `await` work), a module (a block with `export`s), the elements of an array
 *   (`TypeOrmModule.forRoot(…),` lines), the members of an object (`useFactory: …,`), the
 *   members of a class (a method). The names a snippet uses without importing or declaring
 *   them come from CONTEXT: the Quick start's `User`, `UsersModule` and `UsersService`, the
 *   library's exports the pages use bare (`KnoxModule`, …), and a few values the prose
 *   supposes (`validateUser`, `user`, `token`, …), each with the type the prose gives it. A name
 *   outside CONTEXT is an error: import it in the block, or add it here if the pages use it
 *   bare on purpose.
 *
 * Compiled with `strict`, ES modules (`nodenext`), decorators with metadata, as the Quick start
 * app is in test/readme-app/.
 */
import { dirname, join } from 'node:path';
import ts from 'typescript';
import { codeBlocks, type CodeBlock, readPage, ROOT } from './markdown.js';

/** Where the blocks live, in memory: inside the repository, so its node_modules resolve. */
const VIRTUAL = join(ROOT, '.doc-blocks');

const LIBRARY = {
  'nestjs-knox': 'lib/index.ts',
  'nestjs-knox/websocket': 'lib/transports/websocket/index.ts',
  'nestjs-knox/graphql': 'lib/transports/graphql/index.ts',
  'nestjs-knox/passport': 'lib/transports/passport/index.ts',
};

/** Files that pages import but do not show. */
const FIXTURES: Record<string, string> = {
  // docs/transports.md, Passport: "your own passport-jwt strategy".
  'jwt.strategy.ts': `import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { ExtractJwt, Strategy } from 'passport-jwt';

@Injectable()
export class JwtStrategy extends PassportStrategy(Strategy, 'jwt') {
  constructor() {
    super({ jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(), secretOrKey: 'secret' });
  }
  validate(payload: { sub: number }) {
    return { id: payload.sub };
  }
}
`,
};

/** The names snippets may use bare, by the module that gives them. */
const CONTEXT: Record<string, string[]> = {
  'nestjs-knox': [
    'KnoxModule',
    'KnoxTokenService',
    'knoxMigrations',
    'djangoValidateUser',
    'DjangoUser',
  ],
  '@nestjs/typeorm': ['TypeOrmModule'],
  typeorm: ['DataSource'],
  './users/user.entity.js': ['User'],
  './users/users.module.js': ['UsersModule'],
  './users/users.service.js': ['UsersService'],
  './_context.js': [
    'validateUser',
    'user',
    'users',
    'token',
    'tokenId',
    'currentTokenId',
    'sessionId',
    'request',
    'plaintext',
    'dataSource',
    'current',
    'next',
  ],
};

/** The values CONTEXT takes from './_context.js', and the class a snippet's `this` is. */
function contextFile(page: string): string {
  const django = page === 'docs/moving-from-django.md';
  const user = django ? 'DjangoUser' : 'User';
  return `import type { DjangoUser, KnoxRequest, KnoxToken, KnoxTokenService } from 'nestjs-knox';
import type { KnoxWsGuard } from 'nestjs-knox/websocket';
import type { DataSource, Repository } from 'typeorm';
import type { User } from './users/user.entity.js';

/** The app's credential check, as docs/configuration.md describes it. */
export declare const validateUser: (username: string, password: string) => Promise<User | null>;
/** The user and the token of the request a handler serves (@KnoxUser(), @KnoxAuth()). */
export declare const user: ${user};
export declare const users: Repository<${user}>;
export declare const token: KnoxToken<${user}>;
export declare const request: KnoxRequest & { auth: KnoxToken<${user}> };
export declare const tokenId: string;
export declare const currentTokenId: string;
export declare const sessionId: string;
/** A token as a client sent it. */
export declare const plaintext: string;
export declare const dataSource: DataSource;
/** A password change's old and new passwords. */
export declare const current: string;
export declare const next: string;

/** What a snippet's \`this\` is: a provider that injected the library's services. */
export abstract class SnippetHost {
  protected readonly knox!: KnoxTokenService<${user}>;
  protected readonly knoxWs!: KnoxWsGuard;
}
`;
}

const OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2023,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  lib: ['lib.es2023.d.ts', 'lib.esnext.disposable.d.ts'],
  types: ['node'],
  strict: true,
  experimentalDecorators: true,
  emitDecoratorMetadata: true,
  skipLibCheck: true,
  // As the repository's tsconfig.json, since the library's own sources are compiled too.
  strictPropertyInitialization: false,
  noEmit: true,
  paths: Object.fromEntries(
    Object.entries(LIBRARY).map(([name, file]) => [name, [join(ROOT, file)]]),
  ),
};

/** A line of a generated file, and the page line it comes from (null: generated). */
interface Line {
  text: string;
  from: number | null;
}

export interface VirtualFile {
  path: string;
  page: string;
  lines: Line[];
  /** How a snippet was read ('file' for a named file). */
  shape: string;
}

export interface BlockProblem {
  page: string;
  line: number | null;
  message: string;
}

const FILE_NAME = /^\/\/ ([\w./-]+\.ts)\b/;

function isTs(block: CodeBlock): boolean {
  return ['ts', 'typescript'].includes(block.info.split(/\s+/)[0]);
}

function linesOf(block: CodeBlock): Line[] {
  return block.code
    .replace(/\n$/, '')
    .split('\n')
    .map((text, i) => ({ text, from: block.line + i }));
}

/** The Quick start app's files: the named blocks of docs/getting-started.md's "Quick start". */
function quickStartFiles(): Map<string, CodeBlock> {
  const page = 'docs/getting-started.md';
  const text = readPage(page);
  const start = text.indexOf('\n## Quick start\n');
  const startLine = text.slice(0, start).split('\n').length + 1;
  const end = text.slice(start + 1).search(/\n##+ /);
  const endLine =
    startLine + text.slice(start, start + 1 + end).split('\n').length;
  const files = new Map<string, CodeBlock>();
  for (const block of codeBlocks(page, text)) {
    const name = FILE_NAME.exec(block.code)?.[1];
    if (isTs(block) && name && block.line > startLine && block.line < endLine) {
      files.set(name, block);
    }
  }
  return files;
}

/** `import …;` statements at the start of a line, one or several lines long. */
const IMPORT = /^import\b[^;]*?['"][^'"\n]+['"];?[ \t]*(?:\/\/.*)?$/gm;

function syntaxErrors(text: string): number {
  const out = ts.transpileModule(text, {
    reportDiagnostics: true,
    compilerOptions: { ...OPTIONS, paths: undefined },
    fileName: 'snippet.ts',
  });
  return out.diagnostics?.length ?? 0;
}

/** The identifiers a text uses, declared or not (a superset is fine: see `contextImports`). */
function identifiers(text: string): Set<string> {
  const scanner = ts.createScanner(ts.ScriptTarget.Latest, true);
  scanner.setText(text);
  const names = new Set<string>();
  for (
    let t = scanner.scan();
    t !== ts.SyntaxKind.EndOfFileToken;
    t = scanner.scan()
  ) {
    if (t === ts.SyntaxKind.Identifier) {
      names.add(scanner.getTokenText());
    }
  }
  return names;
}

/** The names a module's top level declares or imports. */
function topLevelNames(text: string): Set<string> {
  const source = ts.createSourceFile('x.ts', text, ts.ScriptTarget.Latest);
  const names = new Set<string>();
  for (const statement of source.statements) {
    if (ts.isImportDeclaration(statement)) {
      const clause = statement.importClause;
      if (clause?.name) names.add(clause.name.text);
      const bindings = clause?.namedBindings;
      if (bindings && ts.isNamespaceImport(bindings))
        names.add(bindings.name.text);
      if (bindings && ts.isNamedImports(bindings)) {
        for (const element of bindings.elements) names.add(element.name.text);
      }
    } else if (ts.isVariableStatement(statement)) {
      for (const d of statement.declarationList.declarations) {
        if (ts.isIdentifier(d.name)) names.add(d.name.text);
      }
    } else if (
      (ts.isClassDeclaration(statement) ||
        ts.isFunctionDeclaration(statement) ||
        ts.isInterfaceDeclaration(statement) ||
        ts.isTypeAliasDeclaration(statement) ||
        ts.isEnumDeclaration(statement)) &&
      statement.name
    ) {
      names.add(statement.name.text);
    }
  }
  return names;
}

const SHAPES: { shape: string; before: string[]; after: string[] }[] = [
  {
    shape: 'statements',
    before: [
      `export class __Snippet extends SnippetHost {`,
      `  async run(): Promise<void> {`,
    ],
    after: ['  }', '}'],
  },
  { shape: 'module', before: [], after: [] },
  {
    shape: 'array elements',
    before: ['export const __snippet = ['],
    after: ['];'],
  },
  {
    shape: 'class members',
    before: ['export class __Snippet extends SnippetHost {'],
    after: ['}'],
  },
  {
    // What forRootAsync takes, or what its useFactory returns.
    shape: 'object members',
    before: [
      'export const __snippet: Partial<typeof KNOX_ASYNC_OPTIONS_TYPE & KnoxModuleOptions> = {',
    ],
    after: ['};'],
  },
];

/** A snippet as a file: its imports first, the rest in the first shape that parses. */
export function snippetFile(block: CodeBlock, path: string): VirtualFile {
  const lines = linesOf(block);
  const imports: Line[] = [];
  const rest: Line[] = [...lines];
  const text = lines.map((l) => l.text).join('\n');
  for (const m of text.matchAll(IMPORT)) {
    const first = text.slice(0, m.index).split('\n').length - 1;
    const count = m[0].split('\n').length;
    for (let i = first; i < first + count; i++) {
      imports.push(lines[i]);
      rest[i] = { text: '', from: null };
    }
  }
  const body = rest.map((l) => l.text).join('\n');
  const own = topLevelNames(imports.map((l) => l.text).join('\n'));
  const used = identifiers(body);
  for (const shape of SHAPES) {
    const wrapped = [...shape.before, body, ...shape.after].join('\n');
    // `export` inside a method parses, and is refused only by the checker.
    const exports = /^export\b/m.test(body);
    if (
      (exports && shape.shape === 'statements') ||
      syntaxErrors(wrapped) > 0
    ) {
      continue;
    }
    const declared = shape.shape === 'module' ? topLevelNames(body) : new Set();
    const context: Line[] = [];
    for (const [module, names] of Object.entries(CONTEXT)) {
      const wanted = names.filter(
        (n) => used.has(n) && !own.has(n) && !declared.has(n),
      );
      if (wanted.length > 0) {
        context.push({
          text: `import { ${wanted.join(', ')} } from '${module}';`,
          from: null,
        });
      }
    }
    if (shape.before.some((l) => l.includes('SnippetHost'))) {
      context.push({
        text: `import { SnippetHost } from './_context.js';`,
        from: null,
      });
    }
    if (shape.shape === 'object members') {
      context.push({
        text: `import type { KNOX_ASYNC_OPTIONS_TYPE, KnoxModuleOptions } from 'nestjs-knox';`,
        from: null,
      });
    }
    const generated = (text: string): Line => ({ text, from: null });
    return {
      path,
      page: block.page,
      shape: shape.shape,
      lines: [
        ...imports,
        ...context,
        ...shape.before.map(generated),
        ...rest,
        ...shape.after.map(generated),
      ],
    };
  }
  return {
    path,
    page: block.page,
    shape: 'none',
    lines: lines,
  };
}

/**
 * The files of one page's app folder: the Quick start's, the fixtures, then the page's. A page
 * that shows the same file twice (two variants of `app.module.ts`, say) gets a second folder
 * from the second on: a copy of the first's files with the new variant.
 */
export function pageFiles(
  page: string,
  blocks = codeBlocks(page),
): VirtualFile[] {
  type Entry = Omit<VirtualFile, 'path'> & { own: boolean };
  const first = new Map<string, Entry>();
  for (const [name, block] of quickStartFiles()) {
    const lines = linesOf(block);
    first.set(name, { page: block.page, lines, shape: 'file', own: false });
  }
  for (const [name, text] of Object.entries({
    ...FIXTURES,
    '_context.ts': contextFile(page),
  })) {
    const lines = text.split('\n').map((t) => ({ text: t, from: null }));
    first.set(name, { page, lines, shape: 'file', own: false });
  }
  const folders = [first];
  for (const block of blocks.filter(isTs)) {
    let current = folders[folders.length - 1];
    const name = FILE_NAME.exec(block.code)?.[1];
    if (!name) {
      const snippet = snippetFile(block, '');
      current.set(`_block-line-${block.line}.ts`, { ...snippet, own: false });
      continue;
    }
    if (current.get(name)?.own) {
      current = new Map(
        [...current].filter(([file]) => !file.startsWith('_block-line-')),
      );
      folders.push(current);
    }
    current.set(name, {
      page,
      lines: linesOf(block),
      shape: 'file',
      own: true,
    });
  }
  const base = join(VIRTUAL, page.replace(/[/.]/g, '_'));
  return folders.flatMap((entries, i) =>
    [...entries].map(([name, { own: _own, ...file }]) => ({
      ...file,
      path: join(i === 0 ? base : `${base}-${i + 1}`, name),
    })),
  );
}

/** Type-checks the files; the problems, each at the page line it comes from. */
export function typeCheck(files: VirtualFile[]): BlockProblem[] {
  const byPath = new Map(files.map((f) => [f.path, f]));
  const texts = new Map(
    files.map((f) => [f.path, f.lines.map((l) => l.text).join('\n') + '\n']),
  );
  const dirs = new Set<string>();
  for (const path of texts.keys()) {
    for (let d = dirname(path); d.startsWith(VIRTUAL); d = dirname(d))
      dirs.add(d);
  }
  const host = ts.createCompilerHost(OPTIONS, true);
  const { fileExists, readFile, getSourceFile, directoryExists, realpath } =
    host;
  host.fileExists = (p) => texts.has(p) || fileExists.call(host, p);
  host.readFile = (p) => texts.get(p) ?? readFile.call(host, p);
  host.directoryExists = (p) =>
    dirs.has(p) || (directoryExists?.call(host, p) ?? false);
  host.realpath = (p) =>
    texts.has(p) || dirs.has(p) ? p : (realpath?.call(host, p) ?? p);
  host.getSourceFile = (p, language, onError, create) => {
    const text = texts.get(p);
    return text === undefined
      ? getSourceFile.call(host, p, language, onError, create)
      : ts.createSourceFile(p, text, language, true);
  };
  const program = ts.createProgram([...texts.keys()], OPTIONS, host);
  const problems: BlockProblem[] = [];
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const file = d.file && byPath.get(d.file.fileName);
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (!file) {
      problems.push({
        page: d.file?.fileName ?? '(program)',
        line: null,
        message,
      });
      continue;
    }
    const at =
      d.start === undefined
        ? 0
        : d.file!.getLineAndCharacterOfPosition(d.start).line;
    const from = file.lines[at]?.from ?? null;
    problems.push({
      page: file.page,
      line: from,
      message: `TS${d.code}: ${message}${from === null ? ` (generated line ${at + 1} of ${file.path.slice(VIRTUAL.length + 1)}, read as ${file.shape})` : ''}`,
    });
  }
  return problems;
}

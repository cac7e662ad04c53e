// Keeps the house of lib/ (lib/README.md, "Floors"): every import points
// down the floors below, no import cycle, no source file over MAX_FILE_LINES lines and no
// function over MAX_FUNCTION_LINES. Tests (*.spec.ts) are left out. `npm run lint` runs it;
// `node scripts/check-house.mjs --graph` prints the imports room by room.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, posix, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const LIB = join(ROOT, 'lib');

export const MAX_FILE_LINES = 450;
export const MAX_FUNCTION_LINES = 60;

/**
 * The floors, top down: a file may import its own room and any room on a floor below its own,
 * never a room on its floor or above. A room is a folder of lib/ (`http/`) or a file at its top
 * (`knox-token.service.ts`).
 */
export const FLOORS = [
  ['index.ts'],
  ['knox.module.ts'],
  ['knox.module-definition.ts'],
  ['admin/'],
  ['http/'],
  ['decorators/'],
  ['transports/'],
  ['guard/'],
  ['knox-token.service.ts'],
  ['auth/', 'admin-tokens/'],
  ['sessions/', 'django/'],
  ['cache/', 'tokens/'],
  ['options/'],
  ['knox-request.ts'],
  ['events/'],
  ['store/'],
  ['abilities/', 'knox.constants.ts', 'knox.messages.ts', 'knox-clock.ts'],
];

const FLOOR_OF = new Map(
  FLOORS.flatMap((rooms, floor) => rooms.map((room) => [room, floor])),
);

/** The room of a lib-relative path: its first folder, or the file itself at the top. */
function roomOf(path) {
  const slash = path.indexOf('/');
  return slash === -1 ? path : path.slice(0, slash + 1);
}

function isTest(path) {
  return path.endsWith('.spec.ts');
}

function sourcesUnder(dir) {
  const files = [];
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) {
      files.push(...sourcesUnder(full));
    } else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) {
      files.push(relative(LIB, full).split('\\').join('/'));
    }
  }
  return files.sort();
}

/** The lib files `path` imports (static, type-only, re-exports and dynamic `import()`). */
function importsOf(path, text, known) {
  const { importedFiles } = ts.preProcessFile(text, true, true);
  const found = new Set();
  for (const { fileName } of importedFiles) {
    if (!fileName.startsWith('.')) {
      continue;
    }
    const target = posix
      .normalize(posix.join(posix.dirname(path), fileName))
      .replace(/\.js$/, '.ts');
    if (known.has(target)) {
      found.add(target);
    }
  }
  return [...found].sort();
}

/** Functions, methods, accessors and arrow functions longer than MAX_FUNCTION_LINES. */
function longFunctions(path, text) {
  const source = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true);
  const long = [];
  const visit = (node) => {
    if (ts.isFunctionLike(node) && node.body) {
      const start = source.getLineAndCharacterOfPosition(node.getStart()).line;
      const end = source.getLineAndCharacterOfPosition(node.end).line;
      if (end - start + 1 > MAX_FUNCTION_LINES) {
        const name =
          node.name && ts.isIdentifier(node.name)
            ? node.name.text
            : '(anonymous)';
        long.push({ name, line: start + 1, lines: end - start + 1 });
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return long;
}

/** Tarjan's strongly connected components with more than one file (or a file importing itself). */
function cycles(graph) {
  let index = 0;
  const stack = [];
  const on = new Set();
  const indices = new Map();
  const low = new Map();
  const found = [];
  const connect = (v) => {
    indices.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v)) {
      if (!indices.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (on.has(w)) {
        low.set(v, Math.min(low.get(v), indices.get(w)));
      }
    }
    if (low.get(v) === indices.get(v)) {
      const component = [];
      let w;
      do {
        w = stack.pop();
        on.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || graph.get(v).includes(v)) {
        found.push(component.sort());
      }
    }
  };
  for (const v of graph.keys()) {
    if (!indices.has(v)) {
      connect(v);
    }
  }
  return found;
}

export function inspectHouse() {
  const sources = sourcesUnder(LIB).filter((path) => !isTest(path));
  const known = new Set(sources);
  const graph = new Map();
  const problems = [];
  for (const path of sources) {
    const text = readFileSync(join(LIB, path), 'utf8');
    graph.set(path, importsOf(path, text, known));
    const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
    if (lines > MAX_FILE_LINES && !path.startsWith('store/migrations/')) {
      problems.push(
        `lib/${path} has ${lines} lines (at most ${MAX_FILE_LINES}): split it by what its parts do.`,
      );
    }
    for (const fn of longFunctions(path, text)) {
      problems.push(
        `lib/${path}:${fn.line} ${fn.name}() has ${fn.lines} lines (at most ${MAX_FUNCTION_LINES}): extract its steps.`,
      );
    }
    if (!FLOOR_OF.has(roomOf(path))) {
      problems.push(
        `lib/${path} is in no room: put it in a room of FLOORS (scripts/check-house.mjs), or add its room there and to lib/README.md.`,
      );
    }
  }
  for (const [path, targets] of graph) {
    const from = roomOf(path);
    for (const target of targets) {
      const to = roomOf(target);
      if (from === to || !FLOOR_OF.has(from) || !FLOOR_OF.has(to)) {
        continue;
      }
      if (FLOOR_OF.get(to) <= FLOOR_OF.get(from)) {
        const where =
          FLOOR_OF.get(to) === FLOOR_OF.get(from) ? 'beside' : 'above';
        problems.push(
          `lib/${path} imports lib/${target}, which is ${where} it (${from} → ${to}): move what it needs down to a floor below ${from}, or the importer up.`,
        );
      }
    }
  }
  for (const component of cycles(graph)) {
    problems.push(
      `import cycle: ${component.map((p) => `lib/${p}`).join(' → ')}: move the shared part to a file both import.`,
    );
  }
  return { graph, problems };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { graph, problems } = inspectHouse();
  if (process.argv.includes('--graph')) {
    for (const [path, targets] of graph) {
      console.log(`lib/${path}\n  → ${targets.join('\n  → ') || '(none)'}`);
    }
  }
  if (problems.length > 0) {
    console.error(
      `check-house: ${problems.length} problem(s) in lib/ (see lib/README.md):`,
    );
    for (const problem of problems) {
      console.error(`  - ${problem}`);
    }
    process.exit(1);
  }
  console.log(
    `check-house: ${graph.size} files in lib/, every import points down, no cycle, none over ${MAX_FILE_LINES} lines, no function over ${MAX_FUNCTION_LINES}.`,
  );
}

// Loads the built package (dist/) the way an app without the optional peers would: any import of
// @nestjs/websockets, graphql, passport… fails to resolve. `nestjs-knox` must load anyway, and
// each entry point must fail for its own peer. `npm run check:peers` builds, then runs it.
import { readFileSync } from 'node:fs';
import { register } from 'node:module';

// The transports' optional peers (shared with lib/transports/knox-optional-peers.spec.ts), and
// the database drivers other than pg (better-sqlite3, mysql2: loaded by TypeORM, never by the
// library, which only names them in types).
const OPTIONAL = [
  ...JSON.parse(
    readFileSync(
      new URL('./transport-optional-peers.json', import.meta.url),
      'utf8',
    ),
  ),
  'better-sqlite3',
  'mysql2',
];

const hooks = `
const OPTIONAL = ${JSON.stringify(OPTIONAL)};
export async function resolve(specifier, context, next) {
  const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0];
  if (OPTIONAL.includes(name)) {
    const error = new Error("Cannot find package '" + name + "' (hidden by check-optional-peers)");
    error.code = 'ERR_MODULE_NOT_FOUND';
    throw error;
  }
  return next(specifier, context);
}`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`);

const knox = await import('../dist/index.js');
for (const name of [
  'KnoxModule',
  'KnoxGuard',
  'KnoxTokenService',
  'KnoxUser',
]) {
  if (!knox[name]) throw new Error(`nestjs-knox does not export ${name}`);
}
console.log('nestjs-knox loads without the optional peers');

// nestjs-knox/graphql reads GraphQL contexts by shape and throws HttpExceptions carrying
// GraphQL extensions: it needs none of the optional peers (the app brings graphql for
// @nestjs/graphql), and loads without them.
const gql = await import('../dist/transports/graphql/index.js');
if (!gql.KnoxGqlGuard)
  throw new Error('nestjs-knox/graphql does not export KnoxGqlGuard');
console.log('nestjs-knox/graphql loads without the optional peers');

for (const [entry, peer] of [
  ['websocket', '@nestjs/websockets'],
  ['passport', '@nestjs/passport'],
]) {
  try {
    await import(`../dist/transports/${entry}/index.js`);
    throw new Error(`nestjs-knox/${entry} loaded without ${peer}`);
  } catch (error) {
    if (!String(error.message).includes('hidden by check-optional-peers'))
      throw error;
    console.log(`nestjs-knox/${entry} needs its peer: ${error.message}`);
  }
}

/**
 * `nestjs-knox/graphql`: authentication for `@nestjs/graphql` resolvers. A separate entry point
 * so that apps without `graphql` never load it. `@KnoxUser()` / `@KnoxAuth()` from the main entry
 * work in resolvers.
 */
export { KnoxGqlGuard } from './knox-gql.guard.js';
export {
  KnoxGqlRefusal,
  type KnoxGqlRefusalExtensions,
} from './knox-gql-refusal.js';

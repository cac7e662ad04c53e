/**
 * `nestjs-knox/passport`: a passport strategy named `knox`. A separate entry point so that apps
 * without `@nestjs/passport` and `passport` never load it.
 */
export { KnoxStrategy } from './knox.strategy.js';

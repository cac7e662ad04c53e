export { KnoxModule } from './knox.module.js';
export {
  KNOX_MODULE_OPTIONS,
  KNOX_OPTIONS_TYPE,
  KNOX_ASYNC_OPTIONS_TYPE,
} from './knox.module-definition.js';
export { KnoxGuard } from './knox.guard.js';
export {
  KnoxTokenService,
  KnoxMessages,
  type KnoxAuthResult,
  type KnoxCreateTokenOptions,
  type KnoxIssuedToken,
} from './knox-token.service.js';
export { KnoxController, type KnoxSessionView } from './knox.controller.js';
export { KnoxToken, knoxTokenEntity } from './entities/knox-token.entity.js';
export { KnoxClock, SystemKnoxClock } from './knox-clock.js';
export { KnoxOptionsError } from './knox-options.js';
export { KnoxPublic } from './decorators/knox-public.decorator.js';
export { KnoxUser, KnoxAuth } from './decorators/knox-user.decorator.js';
export { KNOX_PUBLIC_KEY } from './knox.constants.js';
export * from './events/knox.events.js';
export type * from './interfaces/knox-module-options.interface.js';

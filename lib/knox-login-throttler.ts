import {
  HttpException,
  HttpStatus,
  Inject,
  Injectable,
  ServiceUnavailableException,
} from '@nestjs/common';
import { createRequire } from 'node:module';
import type { ThrottlerStorage } from '@nestjs/throttler';
import { KNOX_RESOLVED_OPTIONS } from './knox.constants.js';
import { KnoxMessages } from './knox-token.service.js';
import type { ResolvedKnoxOptions } from './knox-options.js';
import { setResponseHeader } from './knox-request.util.js';

const THROTTLER_NAME = 'knox-login';

/**
 * `@nestjs/throttler` is CommonJS; loading it through `require` (Node's require(esm) brings in
 * Nest 12) keeps it out of ESM loaders that cannot require ESM, such as Jest's on Node 20.
 */
function createDefaultStorage(): ThrottlerStorage {
  const load = createRequire(import.meta.url);
  const { ThrottlerStorageService } = load('@nestjs/throttler') as {
    ThrottlerStorageService: new () => ThrottlerStorage;
  };
  return new ThrottlerStorageService();
}

/**
 * Counts login attempts per username and per client IP in a `@nestjs/throttler` storage and
 * answers 429 with `Retry-After` past the limits (`loginThrottle`).
 */
@Injectable()
export class KnoxLoginThrottler {
  private defaultStorage: ThrottlerStorage | undefined;

  constructor(
    @Inject(KNOX_RESOLVED_OPTIONS)
    private readonly options: ResolvedKnoxOptions,
  ) {}

  /**
   * Counts one attempt.
   *
   * @throws HttpException 429 when a limit is exceeded
   */
  async hit(
    username: string,
    ip: string | null,
    response: unknown,
  ): Promise<void> {
    const throttle = this.options.loginThrottle;
    if (!throttle) {
      return;
    }
    const storage =
      throttle.storage ?? (this.defaultStorage ??= createDefaultStorage());
    const checks: [string, number][] = [
      [
        `${THROTTLER_NAME}:user:${username.toLowerCase()}`,
        throttle.limitPerUsername,
      ],
    ];
    if (ip) {
      checks.push([`${THROTTLER_NAME}:ip:${ip}`, throttle.limitPerIp]);
    }
    for (const [key, limit] of checks) {
      let record;
      try {
        record = await storage.increment(
          key,
          throttle.ttl,
          limit,
          throttle.ttl,
          THROTTLER_NAME,
        );
      } catch {
        throw new ServiceUnavailableException(KnoxMessages.UNAVAILABLE);
      }
      if (record.isBlocked || record.totalHits > limit) {
        const seconds = Math.max(
          1,
          Math.ceil(
            record.isBlocked ? record.timeToBlockExpire : record.timeToExpire,
          ),
        );
        setResponseHeader(response, 'Retry-After', String(seconds));
        throw new HttpException(
          `Too many login attempts. Try again in ${seconds} seconds.`,
          HttpStatus.TOO_MANY_REQUESTS,
        );
      }
    }
  }
}

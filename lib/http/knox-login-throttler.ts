import {
  HttpException,
  HttpStatus,
  Inject,
  Injectable,
  ServiceUnavailableException,
  type OnApplicationShutdown,
} from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';

/** What a throttler storage's `increment` resolves to. */
type ThrottlerStorageRecord = Awaited<
  ReturnType<ThrottlerStorage['increment']>
>;
import { KNOX_RESOLVED_OPTIONS } from '../knox.constants.js';
import { KnoxMessages } from '../knox.messages.js';
import type { ResolvedKnoxOptions } from '../options/knox-options.js';
import { setResponseHeader } from '../knox-request.js';
import { KnoxMemoryThrottlerStorage } from './knox-memory-throttler-storage.js';

const THROTTLER_NAME = 'knox-login';

/**
 * The default login throttle storage: {@link KnoxMemoryThrottlerStorage}, which counts as
 * `@nestjs/throttler`'s in-memory `ThrottlerStorageService` does but holds at most `maxKeys`
 * keys (`ThrottlerStorageService` grows without bound under a spray of distinct usernames or
 * addresses; it also cannot be loaded in Jest's module sandbox before Node 24.9).
 */
export function createDefaultThrottlerStorage(
  maxKeys?: number,
): ThrottlerStorage {
  return new KnoxMemoryThrottlerStorage({ maxKeys });
}

/**
 * Counts login attempts per username and per client IP in a `@nestjs/throttler` storage and
 * answers 429 with `Retry-After` past the limits (`loginThrottle`).
 */
@Injectable()
export class KnoxLoginThrottler implements OnApplicationShutdown {
  private defaultStorage: ThrottlerStorage | undefined;

  constructor(
    @Inject(KNOX_RESOLVED_OPTIONS)
    private readonly options: ResolvedKnoxOptions,
  ) {}

  /** Stops the default storage's sweep timer (a storage given in the options is the app's). */
  onApplicationShutdown(): void {
    (
      this.defaultStorage as { onApplicationShutdown?: () => void } | undefined
    )?.onApplicationShutdown?.();
    this.defaultStorage = undefined;
  }

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
      throttle.storage ??
      (this.defaultStorage ??= createDefaultThrottlerStorage(throttle.maxKeys));
    // The IP first: attempts from a blocked address stop counting against the usernames they name.
    const checks: [string, number][] = [];
    if (ip) {
      checks.push([`${THROTTLER_NAME}:ip:${ip}`, throttle.limitPerIp]);
    }
    checks.push([
      `${THROTTLER_NAME}:user:${username.toLowerCase()}`,
      throttle.limitPerUsername,
    ]);
    for (const [key, limit] of checks) {
      let record: ThrottlerStorageRecord;
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
        throw this.tooMany(record, response);
      }
    }
  }

  /** 429 with `Retry-After`: the seconds until the key's window or block ends. */
  private tooMany(
    record: ThrottlerStorageRecord,
    response: unknown,
  ): HttpException {
    const seconds = Math.max(
      1,
      Math.ceil(
        record.isBlocked ? record.timeToBlockExpire : record.timeToExpire,
      ),
    );
    setResponseHeader(response, 'Retry-After', String(seconds));
    return new HttpException(
      {
        statusCode: HttpStatus.TOO_MANY_REQUESTS,
        message: `Too many login attempts. Try again in ${seconds} seconds.`,
        error: 'Too Many Requests',
      },
      HttpStatus.TOO_MANY_REQUESTS,
    );
  }
}

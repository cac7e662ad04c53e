import {
  Injectable,
  UnauthorizedException,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { createHash, timingSafeEqual } from 'node:crypto';
import { DataSource, type Repository } from 'typeorm';
import type { KnoxToken } from 'nestjs-knox';
import { BenchToken, BenchUser } from './bench-user.entity.js';

/** django-rest-knox's `CONSTANTS.TOKEN_KEY_LENGTH`. */
const TOKEN_KEY_LENGTH = 15;

interface Knox5Request {
  headers: Record<string, string | string[] | undefined>;
  user?: unknown;
}

/**
 * EMULATION, for the benchmark only: not part of nestjs-knox.
 *
 * Authenticates the way django-rest-knox 5.0.2's `TokenAuthentication.authenticate_credentials`
 * does (knox/auth.py), query for query, on the same `knox_authtoken` table:
 *
 * 1. `Token.objects.filter(token_key=token[:15])`: SELECT the candidates by `token_key`;
 * 2. for each candidate, `_cleanup_token`:
 *    - `auth_token.user`: SELECT the user (a lazy foreign-key load),
 *    - `user.auth_token_set.all()`: SELECT **all** the user's tokens,
 *    - `other_token.delete()`: one DELETE per expired sibling, inside the request,
 *    - and, when the candidate itself has expired, DELETE it and skip it;
 * 3. `hash_token(token)` (SHA-512) and `compare_digest` with the candidate's digest;
 * 4. `validate_user`: the user must be active (already loaded in step 2).
 *
 * Django runs in autocommit, so each statement is its own round trip. The `token_expired`
 * signals knox sends have no receivers here and are left out, as is auto refresh (off by default).
 */
@Injectable()
export class Knox5EmulationGuard implements CanActivate {
  private readonly tokens: Repository<KnoxToken>;
  private readonly users: Repository<BenchUser>;

  constructor(@InjectDataSource() dataSource: DataSource) {
    this.tokens = dataSource.getRepository(BenchToken);
    this.users = dataSource.getRepository(BenchUser);
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<Knox5Request>();
    const header = request.headers.authorization;
    const parts = typeof header === 'string' ? header.split(/\s+/) : [];
    if (parts.length !== 2 || parts[0].toLowerCase() !== 'token') {
      throw new UnauthorizedException('Invalid token header.');
    }
    request.user = await this.authenticateCredentials(parts[1]);
    return true;
  }

  private async authenticateCredentials(token: string): Promise<BenchUser> {
    const candidates = await this.tokens
      .createQueryBuilder('token')
      .where('token.token_key = :key', {
        key: token.slice(0, TOKEN_KEY_LENGTH),
      })
      .loadAllRelationIds({ relations: ['user'] })
      .getMany();
    for (const candidate of candidates) {
      const user = await this.cleanupToken(candidate);
      if (!user) {
        continue;
      }
      const digest = createHash('sha512').update(token, 'utf8').digest('hex');
      if (
        digest.length === candidate.digest.length &&
        timingSafeEqual(Buffer.from(digest), Buffer.from(candidate.digest))
      ) {
        if (!user.isActive) {
          throw new UnauthorizedException('User inactive or deleted.');
        }
        return user;
      }
    }
    throw new UnauthorizedException('Invalid token.');
  }

  /** knox's `_cleanup_token`: the user (null when the candidate itself had expired). */
  private async cleanupToken(candidate: KnoxToken): Promise<BenchUser | null> {
    const userId = candidate.user as unknown as number;
    const user = await this.users.findOneByOrFail({ id: userId });
    const siblings = await this.tokens
      .createQueryBuilder('token')
      .where('token.user_id = :userId', { userId })
      .getMany();
    const now = Date.now();
    for (const other of siblings) {
      if (
        other.digest !== candidate.digest &&
        other.expiry &&
        other.expiry.getTime() < now
      ) {
        await this.tokens.delete({ digest: other.digest });
      }
    }
    if (candidate.expiry && candidate.expiry.getTime() < Date.now()) {
      await this.tokens.delete({ digest: candidate.digest });
      return null;
    }
    return user;
  }
}

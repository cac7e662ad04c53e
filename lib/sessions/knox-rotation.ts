import { IP_COLUMN_LENGTH } from '../knox.constants.js';
import type { KnoxEventSink } from '../events/knox-event-sink.js';
import { KnoxEvents, type KnoxClientInfo } from '../events/knox.events.js';
import type { ResolvedKnoxOptions } from '../options/knox-options.js';
import type { KnoxToken } from '../store/knox-token.entity.js';
import type { KnoxUserTokens } from '../store/knox-token.store.js';
import {
  graceEnd,
  graceFitsLimit,
  rotatedExpiry,
} from './knox-session-rules.js';
import { newToken, type KnoxIssuedToken } from './knox-new-token.js';

/** The steps of `KnoxSessions.rotate` under the user's lock, and its events. */

/**
 * The token that replaces `row` (not stored yet): the same session (name, device, abilities,
 * creation time), a fresh lifetime, and this rotation as its first use.
 */
export function rotationSuccessor(
  row: KnoxToken,
  userRef: Record<string, unknown>,
  at: { prefix: string; now: Date; client: Partial<KnoxClientInfo> },
  options: ResolvedKnoxOptions,
): KnoxIssuedToken {
  const successor = newToken(
    userRef,
    at.now,
    {
      ttl: row.ttl ?? (row.expiry ? options.tokenTtl : null),
      prefix: at.prefix,
      name: row.name,
      ip: row.ip,
      userAgent: row.userAgent,
      abilities: row.abilities,
    },
    options,
  );
  Object.assign(successor.record, {
    created: row.created,
    expiry: rotatedExpiry(row, at.now, options),
    // The cap of the first creation carries over: rotating never extends a token's life.
    maxExpiry: row.maxExpiry,
    // This rotation is the successor's first use.
    lastUsedIp: at.client.ip?.slice(0, IP_COLUMN_LENGTH) ?? row.lastUsedIp,
  });
  return successor;
}

/**
 * Retires the rotated row for its grace period when there is one and it fits the token
 * limit, else deletes it. Returns the end of the grace period, or `null` when it was deleted.
 */
export async function retireOrDelete(
  tokens: KnoxUserTokens,
  row: KnoxToken,
  now: Date,
  options: ResolvedKnoxOptions,
): Promise<Date | null> {
  let until = graceEnd(row, now, options.rotationGracePeriod);
  if (
    until &&
    !graceFitsLimit((await tokens.live(now)).length, options.tokenLimitPerUser)
  ) {
    until = null;
  }
  if (until) {
    await tokens.retire(row.digest, until, now);
  } else {
    await tokens.delete([row.digest]);
  }
  return until;
}

/** The events of a rotation: rotated, revoked (when no grace period was left), created. */
export function announceRotation(
  events: KnoxEventSink,
  token: KnoxToken,
  issued: KnoxIssuedToken,
  at: {
    userId: unknown;
    graceUntil: Date | null;
    client: Partial<KnoxClientInfo>;
  },
): void {
  const { userId, graceUntil, client } = at;
  events.emit(KnoxEvents.TOKEN_ROTATED, {
    ...events.tokenEvent(token, userId, client),
    newTokenId: issued.record.id,
    oldTokenValidUntil: graceUntil,
    abilities: issued.record.abilities,
  });
  if (!graceUntil) {
    events.revoked([token], userId, 'rotated', client);
  }
  events.created(issued.record, userId, 'rotate', client);
}

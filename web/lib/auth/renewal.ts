/**
 * When a dev session renews its token (lib/auth/session.tsx): ahead of the expiry by a third of
 * the token's lifetime, at most a minute (Clerk's own client renews its 60 s tokens about every
 * 50 s), so a page that stays open keeps a valid `__session` cookie for EventSource, which
 * cannot send a header. Pure, so the schedule is unit-tested.
 */

import { secondsLeft, tokenClaims } from "@/lib/auth/token";

export const MAX_RENEW_AHEAD_S = 60;
const MAX_RETRY_MS = 30_000;

/** How long before its expiry a token is renewed. */
export function renewAheadS(token: string): number {
  const claims = tokenClaims(token);
  const lifetime = typeof claims?.exp === "number" && typeof claims.iat === "number" ? claims.exp - claims.iat : null;
  if (lifetime === null || lifetime <= 0) return MAX_RENEW_AHEAD_S;
  return Math.min(MAX_RENEW_AHEAD_S, lifetime / 3);
}

/** True when the token is due for renewal (or cannot be read). */
export function shouldRenew(token: string, nowMs: number = Date.now()): boolean {
  const left = secondsLeft(token, nowMs);
  return left === null || left < renewAheadS(token);
}

/** Milliseconds from now until the token is due for renewal (0: now). */
export function renewDelayMs(token: string, nowMs: number = Date.now()): number {
  const left = secondsLeft(token, nowMs);
  if (left === null) return 0;
  return Math.max(0, Math.round((left - renewAheadS(token)) * 1000));
}

/** After `failures` renewals in a row could not reach the web server: when to try again. */
export function retryRenewalMs(failures: number): number {
  return Math.min(MAX_RETRY_MS, 1000 * 2 ** Math.max(0, failures - 1));
}

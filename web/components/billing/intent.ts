/**
 * One `Idempotency-Key` per user intent (ADR 0009). A retry of the same intent reuses it, so a
 * double click or a retry after a lost answer never creates twice; once the gateway answered
 * for good (a success, a refusal, a 5xx) the next click is a new intent with a new key:
 * the gateway replays a recorded answer byte for byte, and Stripe may keep a 5xx for its key.
 */

import { ApiError } from "@/lib/api/client";

/** Keep the key for the next attempt only when the last one got no definite answer. */
export function keepsIntent(error: unknown): boolean {
  if (!(error instanceof ApiError)) return true;
  return error.status === 0 || error.human.code === "idempotency_key_in_progress";
}

export class IntentKeys {
  private readonly keys = new Map<string, string>();

  constructor(private readonly mint: () => string) {}

  /** The key of this intent, made on first use. */
  keyFor(intent: string): string {
    let key = this.keys.get(intent);
    if (!key) {
      key = this.mint();
      this.keys.set(intent, key);
    }
    return key;
  }

  /** After an attempt: forget the key unless the intent is still open (see keepsIntent). */
  settle(intent: string, error: unknown | null): void {
    if (error === null || !keepsIntent(error)) this.keys.delete(intent);
  }

  clear(): void {
    this.keys.clear();
  }
}

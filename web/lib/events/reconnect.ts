/**
 * How the live stream comes back after a drop (lib/events/use-event-stream.ts). Pure, so the
 * policy is unit-tested.
 *
 * A dropped connection (a network blip, a gateway restart) the browser's EventSource reopens by
 * itself, after the gateway's `retry`, sending `Last-Event-ID`. An answer other than 200 (an
 * expired session: 401; a limit: 429; a gateway shutting down: 503) makes it give up
 * (`readyState` CLOSED): then the page renews its session and opens a new stream, resuming
 * with `?last_event_id=` (a new EventSource cannot send the header), waiting longer after each
 * failure in a row, with jitter so that every page does not return at the same instant.
 */

export const FIRST_RECONNECT_MS = 1000;
export const MAX_RECONNECT_MS = 30_000;

/** What to do after an `error` event, from the EventSource's `readyState`. */
export function afterStreamError(readyState: number): "browser-retries" | "reopen" {
  // 2 is EventSource.CLOSED (the constant is not there in every environment the tests run in).
  return readyState === 2 ? "reopen" : "browser-retries";
}

/** The wait before opening a new stream after `failures` failures in a row (the first: 0). */
export function reconnectDelayMs(failures: number, random: () => number = Math.random): number {
  const ceiling = Math.min(MAX_RECONNECT_MS, FIRST_RECONNECT_MS * 2 ** Math.max(0, failures));
  return Math.round(ceiling * (0.5 + random() / 2));
}

/** The stream's address: the gateway's `/v1/events`, after `lastId` when the page saw one. */
export function streamUrl(apiBaseUrl: string, pageUrl: string, lastId: string | null): string {
  const url = new URL(`${apiBaseUrl}/v1/events`, pageUrl);
  if (lastId) url.searchParams.set("last_event_id", lastId);
  return url.toString();
}

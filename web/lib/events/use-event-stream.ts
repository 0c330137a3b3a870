"use client";

import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { toast } from "react-toastify";

import { useApiBaseUrl } from "@/lib/api/client";
import { useSession } from "@/lib/auth/session";
import { afterStreamError, reconnectDelayMs, streamUrl } from "@/lib/events/reconnect";
import { effectOf, EVENT_TYPES, type LiveEvent } from "@/lib/events/reducer";

export type StreamState = "connecting" | "open" | "reconnecting";

type Listener = (event: LiveEvent) => void;
const listeners = new Set<Listener>();

/** Follow live events in a component (e.g. a training's progress line). */
export function useLiveEvents(listener: Listener): void {
  const latest = useRef(listener);
  useEffect(() => {
    latest.current = listener;
  });
  useEffect(() => {
    const forward: Listener = (event) => latest.current(event);
    listeners.add(forward);
    return () => {
      listeners.delete(forward);
    };
  }, []);
}

/**
 * The one live connection of a signed-in page: `GET /v1/events` (SSE) with the session cookie.
 * Each event invalidates the queries it makes stale and may raise a toast (lib/events/reducer).
 * A dropped connection the browser reopens by itself, with `Last-Event-ID`; when it gives up (the
 * gateway answered other than 200: an expired session, a limit, a restart) this hook renews the
 * session and opens a new stream after `?last_event_id=`, backing off (lib/events/reconnect), and
 * at once when the page comes back online or into view.
 */
export function useEventStream(): StreamState {
  const baseUrl = useApiBaseUrl();
  const { getToken, status } = useSession();
  const queryClient = useQueryClient();
  const [state, setState] = useState<StreamState>("connecting");

  useEffect(() => {
    if (status !== "signed-in") return;
    let source: EventSource | null = null;
    let lastId: string | null = null;
    let failures = 0;
    let timer: ReturnType<typeof setTimeout> | null = null;
    let opening = false;
    let stopped = false;

    const apply = (event: LiveEvent) => {
      const effect = effectOf(event);
      for (const key of effect.invalidate) void queryClient.invalidateQueries({ queryKey: [key] });
      if (effect.toast) toast(effect.toast.text, { type: effect.toast.kind, toastId: effect.toast.id });
      for (const listener of listeners) listener(event);
    };

    const dispatch = (message: MessageEvent<string>) => {
      if (message.lastEventId) lastId = message.lastEventId;
      let data: Record<string, unknown> = {};
      try {
        data = JSON.parse(message.data) as Record<string, unknown>;
      } catch {
        data = {};
      }
      apply({ id: message.lastEventId || null, type: message.type, data });
    };

    const open = async (renew: boolean) => {
      if (opening) return;
      opening = true;
      try {
        // A valid cookie before (re)connecting: EventSource cannot send a header.
        await getToken({ fresh: renew });
      } finally {
        opening = false;
      }
      if (stopped) return;
      const resumeFrom = lastId;
      const current = new EventSource(streamUrl(baseUrl, window.location.href, resumeFrom), { withCredentials: true });
      source = current;
      current.onopen = () => {
        failures = 0;
        setState("open");
        // A new stream after a failed one, with no event seen to resume after (the id the
        // stream opens with comes in a message EventSource does not dispatch): whatever
        // happened in between is lost to it, so re-read everything shown, as on a resync.
        if (renew && !resumeFrom) apply({ id: null, type: "resync", data: { reason: "reopened" } });
      };
      current.onerror = () => {
        if (current !== source) return;
        setState("reconnecting");
        if (afterStreamError(current.readyState) === "reopen") {
          current.close();
          source = null;
          timer = setTimeout(() => {
            timer = null;
            void open(true);
          }, reconnectDelayMs(failures));
          failures += 1;
        }
      };
      current.onmessage = dispatch;
      for (const type of EVENT_TYPES) current.addEventListener(type, dispatch as EventListener);
    };

    // Back online or back in view while waiting to reconnect: now, not after the backoff.
    const wake = () => {
      if (stopped || timer === null || document.visibilityState === "hidden") return;
      clearTimeout(timer);
      timer = null;
      void open(true);
    };
    window.addEventListener("online", wake);
    document.addEventListener("visibilitychange", wake);

    void open(false);
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      window.removeEventListener("online", wake);
      document.removeEventListener("visibilitychange", wake);
      source?.close();
    };
  }, [baseUrl, getToken, status, queryClient]);

  return state;
}

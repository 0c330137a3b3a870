"use client";

import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { toast } from "react-toastify";

import { useApiBaseUrl } from "@/lib/api/client";
import { useSession } from "@/lib/auth/session";
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

const MAX_BACKOFF_MS = 30_000;

/**
 * The one live connection of a signed-in page: `GET /v1/events` (SSE) with the session cookie.
 * Each event invalidates the queries it makes stale and may raise a toast (lib/events/reducer).
 * The browser's EventSource reconnects by itself with `Last-Event-ID`; when it gives up (the
 * gateway refused: an expired session, a restart), this hook renews the token and opens a new
 * stream with `?last_event_id=` so nothing the buffer still holds is missed.
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
    let attempt = 0;
    let timer: ReturnType<typeof setTimeout> | null = null;
    let stopped = false;

    const dispatch = (message: MessageEvent<string>) => {
      if (message.lastEventId) lastId = message.lastEventId;
      let data: Record<string, unknown> = {};
      try {
        data = JSON.parse(message.data) as Record<string, unknown>;
      } catch {
        data = {};
      }
      const event: LiveEvent = { id: message.lastEventId || null, type: message.type, data };
      const effect = effectOf(event);
      for (const key of effect.invalidate) void queryClient.invalidateQueries({ queryKey: [key] });
      if (effect.toast) toast(effect.toast.text, { type: effect.toast.kind, toastId: effect.toast.id });
      for (const listener of listeners) listener(event);
    };

    const open = async (renew: boolean) => {
      // A fresh cookie before (re)connecting: EventSource cannot send a header.
      await getToken({ fresh: renew });
      if (stopped) return;
      const url = new URL(`${baseUrl}/v1/events`, window.location.href);
      if (lastId) url.searchParams.set("last_event_id", lastId);
      source = new EventSource(url, { withCredentials: true });
      source.onopen = () => {
        attempt = 0;
        setState("open");
      };
      source.onerror = () => {
        if (source?.readyState === EventSource.CLOSED) {
          // The browser gave up (a non-200 answer): renew the session and try again, backing off.
          source.close();
          setState("reconnecting");
          const delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** attempt) * (0.5 + Math.random() / 2);
          attempt += 1;
          timer = setTimeout(() => void open(true), delay);
        } else {
          setState("reconnecting");
        }
      };
      source.onmessage = dispatch;
      for (const type of EVENT_TYPES) source.addEventListener(type, dispatch as EventListener);
    };

    void open(false);
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      source?.close();
    };
  }, [baseUrl, getToken, status, queryClient]);

  return state;
}

"use client";

import { useQueryClient } from "@tanstack/react-query";
import { useCallback, useEffect, useReducer, useRef } from "react";

import { ApiError, dataOf, useApi } from "@/lib/api/client";

import {
  contentTypeOf,
  initialQueue,
  nextToStart,
  queueReducer,
  slotOf,
  slotUsable,
  storageFailure,
  type Failure,
  type NewFile,
  type QueueState,
  type UploadItem,
} from "./upload-queue";
import { postToStorage } from "./upload-transport";

/** How long the gateway may take to judge one photo before we say so (it has its own deadline). */
export const COMPLETE_TIMEOUT_MS = 90_000;

// Browsers other than Safari cannot draw HEIC: no preview for those (an icon instead).
const PREVIEWABLE = new Set(["image/jpeg", "image/png", "image/webp"]);

function apiFailure(error: unknown, timedOut: boolean): Failure {
  if (timedOut) {
    return { reason: "timeout", message: "Visiona took too long to answer. Your photo is safe; retry to ask again.", code: "timeout" };
  }
  if (error instanceof ApiError) {
    return { reason: error.status === 0 ? "network" : "api", message: `${error.human.title}. ${error.human.message}`, code: error.human.code };
  }
  return { reason: "network", message: "Visiona is out of reach. Check your connection and retry.", code: "network_error" };
}

/**
 * The Photos page's uploads: files in, verdicts out. Runs the pure queue (upload-queue.ts):
 * at most three in flight, each one asking for its presigned POST, sending the file straight to
 * storage with progress, then asking the gateway for the verdict. Failures stay failed, with a
 * reason, until retried; nothing waits for ever.
 */
export function useUploadQueue() {
  const api = useApi();
  const queryClient = useQueryClient();
  const [state, dispatch] = useReducer(queueReducer, initialQueue);
  const files = useRef(new Map<string, File>());
  const previews = useRef(new Map<string, string>());
  const running = useRef(new Set<string>());
  const lifetime = useRef<AbortController | null>(null);
  const mounted = useRef(false);
  const refresh = useRef<ReturnType<typeof setTimeout> | null>(null);

  // Object URLs and in-flight uploads end with the page (not with StrictMode's rehearsal).
  useEffect(() => {
    mounted.current = true;
    lifetime.current ??= new AbortController();
    const urls = previews.current;
    return () => {
      mounted.current = false;
      setTimeout(() => {
        if (mounted.current) return;
        lifetime.current?.abort();
        lifetime.current = null;
        for (const url of urls.values()) URL.revokeObjectURL(url);
        urls.clear();
      }, 0);
    };
  }, []);

  // A preview no longer shown (refused, removed) is released at once.
  useEffect(() => {
    const shown = new Set(state.items.map((item) => item.previewUrl).filter(Boolean));
    for (const [key, url] of previews.current) {
      if (!shown.has(url)) {
        URL.revokeObjectURL(url);
        previews.current.delete(key);
      }
    }
    const kept = new Set(state.items.map((item) => item.key));
    for (const key of files.current.keys()) if (!kept.has(key)) files.current.delete(key);
  }, [state.items]);

  // Leaving the page with uploads under way loses them: the browser asks first.
  const busy = state.items.some((item) => item.phase.kind === "queued" || item.phase.kind === "uploading" || item.phase.kind === "completing");
  useEffect(() => {
    if (!busy) return;
    const warn = (event: BeforeUnloadEvent) => event.preventDefault();
    window.addEventListener("beforeunload", warn);
    return () => window.removeEventListener("beforeunload", warn);
  }, [busy]);

  const refreshPhotos = useCallback(() => {
    // One re-read of the photo lists for a burst of verdicts.
    if (refresh.current) clearTimeout(refresh.current);
    refresh.current = setTimeout(() => void queryClient.invalidateQueries({ queryKey: ["photos"] }), 800);
  }, [queryClient]);

  const run = useCallback(
    async (item: UploadItem) => {
      const key = item.key;
      const attempt = item.attempts + 1;
      const signal = lifetime.current?.signal;
      const file = files.current.get(key);
      if (!file) {
        dispatch({ type: "fail", key, failure: { reason: "network", message: "This file is no longer available. Choose it again." } });
        return;
      }
      let slot = item.slot;
      if (!(item.uploaded && slot)) {
        if (!slotUsable(slot, Date.now())) {
          try {
            const contentType = item.contentType ?? contentTypeOf(file.name, file.type) ?? "image/jpeg";
            const answer = dataOf(
              await api.POST("/v1/photos/uploads", {
                body: { photos: [{ content_type: contentType }], face_policy: "require" },
                headers: { "Idempotency-Key": `${key}.slot.${attempt}` },
                signal,
              }),
            );
            const upload = answer.uploads[0];
            if (!upload) throw new ApiError(502, null, null);
            slot = slotOf(upload);
          } catch (error) {
            dispatch({ type: "fail", key, failure: apiFailure(error, false) });
            return;
          }
          dispatch({ type: "slot", key, slot });
          if (file.size > slot.maxBytes) {
            // Refused by the reducer; the unused slot's photo goes too (best effort).
            void api.DELETE("/v1/photos/{photo_id}", { params: { path: { photo_id: slot.photoId } } }).catch(() => undefined);
            return;
          }
        }
        const outcome = await postToStorage(slot, file, (loaded, total) => dispatch({ type: "progress", key, loaded, total }), { signal });
        if (!outcome.ok) {
          if (outcome.stalled) {
            dispatch({
              type: "fail",
              key,
              failure: { reason: "stalled", message: "The upload stopped moving for 30 seconds, so we stopped it. Check your connection and retry.", code: "upload_stalled" },
            });
          } else {
            const { failure, dropSlot } = storageFailure(outcome.status, outcome.body);
            dispatch({ type: "fail", key, failure, dropSlot });
          }
          return;
        }
        dispatch({ type: "uploaded", key });
      }

      const timeout = new AbortController();
      const timer = setTimeout(() => timeout.abort(), COMPLETE_TIMEOUT_MS);
      const stop = () => timeout.abort();
      signal?.addEventListener("abort", stop);
      try {
        const photo = dataOf(
          await api.POST("/v1/photos/{photo_id}/complete", {
            params: { path: { photo_id: slot.photoId } },
            headers: { "Idempotency-Key": `${key}.complete.${attempt}` },
            signal: timeout.signal,
          }),
        );
        dispatch({ type: "verdict", key, photo });
        refreshPhotos();
      } catch (error) {
        const notUploaded = error instanceof ApiError && error.human.code === "photo_not_uploaded";
        const gone = error instanceof ApiError && (error.human.code === "photo_not_found" || error.status === 404);
        dispatch({ type: "fail", key, failure: apiFailure(error, timeout.signal.aborted && !signal?.aborted), notUploaded, dropSlot: gone });
      } finally {
        clearTimeout(timer);
        signal?.removeEventListener("abort", stop);
      }
    },
    [api, refreshPhotos],
  );

  // The scheduler: whenever the queue changes, start what may start.
  useEffect(() => {
    for (const item of nextToStart(state)) {
      if (running.current.has(item.key)) continue;
      running.current.add(item.key);
      dispatch({ type: "start", key: item.key });
      void run(item).finally(() => running.current.delete(item.key));
    }
  }, [state, run]);

  const add = useCallback((chosen: FileList | File[]) => {
    const added: NewFile[] = [];
    for (const file of Array.from(chosen)) {
      const key = crypto.randomUUID();
      files.current.set(key, file);
      const type = contentTypeOf(file.name, file.type);
      let previewUrl: string | null = null;
      if (type && PREVIEWABLE.has(type) && file.size > 0) {
        previewUrl = URL.createObjectURL(file);
        previews.current.set(key, previewUrl);
      }
      added.push({ key, name: file.name, size: file.size, type: file.type, previewUrl });
    }
    dispatch({ type: "add", files: added });
  }, []);

  const retry = useCallback((key: string) => dispatch({ type: "retry", key }), []);
  const remove = useCallback((key: string) => dispatch({ type: "remove", key }), []);
  const clearFinished = useCallback(() => dispatch({ type: "clearFinished" }), []);

  return { state: state as QueueState, add, retry, remove, clearFinished };
}

"use client";

import { useInfiniteQuery, useQuery, useQueryClient, type QueryKey } from "@tanstack/react-query";
import { useRef } from "react";

import { IntentKeys } from "@/components/billing/intent";
import { dataOf, idempotencyKey, useApi, type ApiClient, type Schemas } from "@/lib/api/client";

export type AdminJob = Schemas["AdminJob"];
export type ListedKind = "training" | "generation" | "generation_ingest";
export type UserList = "ledger" | "models" | "generations";
/** A page of a list the console pages through by cursor (the shape PagedHistory reads). */
export type ListPage<Entry> = { entries: Entry[]; next_cursor: string | null };
export type LookupEntry<List extends UserList> = Schemas["UserLookup"][List][number];

/** Every console request: its problems read in an operator's words (lib/problems.ts). */
export const OPERATOR_META = { audience: "operator" } as const;
export const JOBS_PAGE_SIZE = 25;
export const LOOKUP_PAGE_SIZE = 10;
export const DEAD_LETTERS_SHOWN = 20;
const OUTBOX_REFRESH_MS = 15_000;

/** Every query of the console starts with this key: acting on anything refreshes the lot. */
export const ADMIN_KEY = ["admin"] as const;

/** The console's query-key prefix for one user's lookup (refreshed when their credits move). */
export function userKey(userId: string): QueryKey {
  return [...ADMIN_KEY, "user", userId];
}

/** Jobs of every user not ended and older than an age, a page at a time. */
export function useStuckJobs(kind: ListedKind, olderThanS: number) {
  const api = useApi();
  return useInfiniteQuery({
    queryKey: [...ADMIN_KEY, "jobs", kind, olderThanS],
    initialPageParam: null as string | null,
    queryFn: async ({ pageParam }): Promise<ListPage<AdminJob>> => {
      const page = dataOf(
        await api.GET("/v1/admin/jobs", { params: { query: { kind, older_than_s: olderThanS, cursor: pageParam, limit: JOBS_PAGE_SIZE } } }),
      );
      return { entries: page.jobs, next_cursor: page.next_cursor };
    },
    getNextPageParam: (last) => last.next_cursor ?? null,
    meta: OPERATOR_META,
  });
}

/** Who an operator looks up, and why (the reason is required and audited in the user's log). */
export type Subject = { userId: string; reason: string };

type Cursors = Partial<Record<`${UserList}_cursor`, string>>;

function lookUp(api: ApiClient, { userId, reason }: Subject, cursors: Cursors = {}) {
  return api.GET("/v1/admin/users/{user_id}", {
    params: { path: { user_id: userId }, query: { reason, limit: LOOKUP_PAGE_SIZE, ...cursors } },
  });
}

function lookupKey(subject: Subject): QueryKey {
  return [...userKey(subject.userId), subject.reason];
}

/** The first answer about a user: credits, and the first page of each list. */
export function useUserLookup(subject: Subject) {
  const api = useApi();
  return useQuery({
    queryKey: lookupKey(subject),
    queryFn: async () => dataOf(await lookUp(api, subject)),
    meta: OPERATOR_META,
  });
}

/**
 * One list of a looked-up user (their ledger, models or generations), by its own cursor. The
 * first page is the lookup's own answer (one request, shared); each further page asks again
 * with this list's cursor alone.
 */
export function useUserList<List extends UserList>(subject: Subject, list: List) {
  const api = useApi();
  const queryClient = useQueryClient();
  return useInfiniteQuery({
    queryKey: [...lookupKey(subject), list],
    initialPageParam: null as string | null,
    queryFn: async ({ pageParam }): Promise<ListPage<LookupEntry<List>>> => {
      const found =
        pageParam === null
          ? await queryClient.fetchQuery({ queryKey: lookupKey(subject), queryFn: async () => dataOf(await lookUp(api, subject)) })
          : dataOf(await lookUp(api, subject, { [`${list}_cursor`]: pageParam }));
      return { entries: found[list] as LookupEntry<List>[], next_cursor: found[`${list}_next_cursor`] };
    },
    getNextPageParam: (last) => last.next_cursor ?? null,
    meta: OPERATOR_META,
  });
}

export function useDeadLetters() {
  const api = useApi();
  return useQuery({
    queryKey: [...ADMIN_KEY, "dead-letters"],
    queryFn: async () => dataOf(await api.GET("/v1/admin/dead-letters", { params: { query: { limit: DEAD_LETTERS_SHOWN } } })),
    meta: OPERATOR_META,
  });
}

export function useOutbox() {
  const api = useApi();
  return useQuery({
    queryKey: [...ADMIN_KEY, "outbox"],
    queryFn: async () => dataOf(await api.GET("/v1/admin/outbox")),
    refetchInterval: OUTBOX_REFRESH_MS,
    meta: OPERATOR_META,
  });
}

/**
 * Sends an operator's action once per intent (ADR 0009): a retry after a lost answer reuses the
 * Idempotency-Key, so a grant is never applied twice; a definite answer ends the intent.
 */
export function useOnce(): <T>(intent: string, send: (key: string) => Promise<T>) => Promise<T> {
  const keys = useRef<IntentKeys | null>(null);
  return async (intent, send) => {
    keys.current ??= new IntentKeys(idempotencyKey);
    const intents = keys.current;
    try {
      const answer = await send(intents.keyFor(intent));
      intents.settle(intent, null);
      return answer;
    } catch (error) {
      intents.settle(intent, error);
      throw error;
    }
  };
}

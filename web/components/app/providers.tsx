"use client";

import { MutationCache, QueryCache, QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { useMemo, useState, type ReactNode } from "react";
import { ToastContainer } from "react-toastify";

import { ApiContext, ApiError, createApiClient } from "@/lib/api/client";
import type { AuthMode } from "@/lib/auth/mode";
import type { Audience } from "@/lib/problems";
import { SessionProvider, useSession } from "@/lib/auth/session";
import { toastProblem } from "@/lib/toasts";

function retry(failureCount: number, error: unknown): boolean {
  // 4xx answers will not change by asking again, and a 429 is told at once (with its wait)
  // rather than retried behind the person's back; outages and dropped connections may pass.
  if (error instanceof ApiError && error.status >= 400 && error.status < 500) return false;
  return failureCount < 2;
}

/** The server's Retry-After when it gave one (at most 10 s), else 1 s, 2 s, … */
function retryDelay(failureCount: number, error: unknown): number {
  const asked = error instanceof ApiError ? error.human.retryAfterS : null;
  if (asked !== null && asked > 0) return Math.min(asked, 10) * 1000;
  return Math.min(1000 * 2 ** failureCount, 10_000);
}

function toastUnlessInPlace(error: unknown, meta: { inPlace?: readonly string[]; audience?: Audience } | undefined): void {
  if (error instanceof ApiError && meta?.inPlace?.includes(error.human.code)) return;
  toastProblem(error, meta?.audience);
}

function ApiProvider({ apiUrl, children }: { apiUrl: string; children: ReactNode }) {
  const { getToken } = useSession();
  const api = useMemo(() => createApiClient(apiUrl, getToken), [apiUrl, getToken]);
  const value = useMemo(() => ({ api, baseUrl: apiUrl }), [api, apiUrl]);
  return <ApiContext.Provider value={value}>{children}</ApiContext.Provider>;
}

export function Providers({
  apiUrl,
  authMode,
  clerkPublishableKey,
  initialToken,
  children,
}: {
  apiUrl: string;
  authMode: AuthMode;
  clerkPublishableKey: string | null;
  initialToken: string | null;
  children: ReactNode;
}) {
  const [queryClient] = useState(
    () =>
      new QueryClient({
        defaultOptions: {
          queries: { retry, retryDelay, staleTime: 15_000, refetchOnWindowFocus: true },
          mutations: { retry: false },
        },
        // Every failed request says so, once, in words (a query's error is also shown in place).
        // A page that shows some problems in place names their codes in `meta.inPlace`; an
        // operator's requests say `meta.audience` (their problems read otherwise).
        queryCache: new QueryCache({ onError: (error, query) => toastUnlessInPlace(error, query.meta) }),
        mutationCache: new MutationCache({
          onError: (error, _variables, _context, mutation) => toastUnlessInPlace(error, mutation.meta),
        }),
      }),
  );
  return (
    <SessionProvider mode={authMode} clerkPublishableKey={clerkPublishableKey} initialToken={initialToken}>
      <QueryClientProvider client={queryClient}>
        <ApiProvider apiUrl={apiUrl}>{children}</ApiProvider>
      </QueryClientProvider>
      <ToastContainer position="bottom-right" theme="dark" newestOnTop limit={4} />
    </SessionProvider>
  );
}

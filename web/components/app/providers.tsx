"use client";

import { MutationCache, QueryCache, QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { useMemo, useState, type ReactNode } from "react";
import { ToastContainer } from "react-toastify";

import { ApiContext, ApiError, createApiClient } from "@/lib/api/client";
import type { AuthMode } from "@/lib/auth/mode";
import { SessionProvider, useSession } from "@/lib/auth/session";
import { toastProblem } from "@/lib/toasts";

function retry(failureCount: number, error: unknown): boolean {
  // 4xx answers will not change by asking again; outages and dropped connections may.
  if (error instanceof ApiError && error.status >= 400 && error.status < 500 && error.status !== 429) return false;
  return failureCount < 3;
}

function toastUnlessInPlace(error: unknown, inPlace: readonly string[] | undefined): void {
  if (error instanceof ApiError && inPlace?.includes(error.human.code)) return;
  toastProblem(error);
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
          queries: { retry, staleTime: 15_000, refetchOnWindowFocus: true },
          mutations: { retry: false },
        },
        // Every failed request says so, once, in words (a query's error is also shown in place).
        // A page that shows some problems in place names their codes in `meta.inPlace`.
        queryCache: new QueryCache({ onError: (error, query) => toastUnlessInPlace(error, query.meta?.inPlace) }),
        mutationCache: new MutationCache({
          onError: (error, _variables, _context, mutation) => toastUnlessInPlace(error, mutation.meta?.inPlace),
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

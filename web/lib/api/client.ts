"use client";

import createClient, { type Client, type Middleware } from "openapi-fetch";
import { createContext, useContext } from "react";

import { humanProblem, type Audience, type HumanProblem, type Problem } from "@/lib/problems";

import type { components, paths } from "./schema";

export type Schemas = components["schemas"];

declare module "@tanstack/react-query" {
  interface Register {
    // Problem codes the page shows in place: no toast for them too; and who reads the toast
    // (an operator's requests: lib/problems.ts's Audience).
    queryMeta: { inPlace?: readonly string[]; audience?: Audience };
    mutationMeta: { inPlace?: readonly string[]; audience?: Audience };
  }
}
export type ApiClient = Client<paths>;

/** A problem+json answer (or no answer at all: status 0), with what a person should read. */
export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem | null;
  readonly human: HumanProblem;

  constructor(status: number, problem: Problem | null, retryAfterS: number | null) {
    const human = humanProblem(problem, status, retryAfterS);
    super(`${human.code}: ${human.title}`);
    this.name = "ApiError";
    this.status = status;
    this.problem = problem;
    this.human = human;
  }
}

/** What a person reads of any failure: an API problem in the audience's words, else "out of reach". */
export function describeError(error: unknown, audience: Audience = "user"): HumanProblem {
  if (!(error instanceof ApiError)) return humanProblem(null, 0);
  return audience === "user" ? error.human : humanProblem(error.problem, error.status, error.human.retryAfterS, audience);
}

function retryAfterSeconds(value: string | null): number | null {
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, Math.ceil(seconds));
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

export async function problemFrom(response: Response): Promise<ApiError> {
  let problem: Problem | null = null;
  try {
    const body: unknown = await response.clone().json();
    if (body && typeof body === "object") problem = body as Problem;
  } catch {
    problem = null;
  }
  return new ApiError(response.status, problem, retryAfterSeconds(response.headers.get("retry-after")));
}

/** A fresh random key for a POST that creates or charges: one per user intent, kept across retries. */
export function idempotencyKey(): string {
  return crypto.randomUUID();
}

/**
 * The typed client of the gateway. Every request carries the session token as a Bearer header;
 * every answer that is not 2xx is thrown as an ApiError (so TanStack Query sees a failure).
 */
export function createApiClient(baseUrl: string, getToken: (options?: { fresh?: boolean }) => Promise<string | null>): ApiClient {
  const client = createClient<paths>({ baseUrl: baseUrl || undefined });
  const auth: Middleware = {
    async onRequest({ request }) {
      const token = await getToken();
      if (token) request.headers.set("Authorization", `Bearer ${token}`);
      return request;
    },
    async onResponse({ response }) {
      if (!response.ok) throw await problemFrom(response);
      return response;
    },
    onError({ error }) {
      if (error instanceof ApiError) return error;
      return new ApiError(0, null, null);
    },
  };
  client.use(auth);
  return client;
}

export const ApiContext = createContext<{ api: ApiClient; baseUrl: string } | null>(null);

export function useApi(): ApiClient {
  const value = useContext(ApiContext);
  if (!value) throw new Error("useApi outside ApiProvider");
  return value.api;
}

export function useApiBaseUrl(): string {
  const value = useContext(ApiContext);
  if (!value) throw new Error("useApiBaseUrl outside ApiProvider");
  return value.baseUrl;
}

/** The data of an openapi-fetch answer; errors were thrown by the middleware already. */
export function dataOf<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.data === undefined) {
    if (result.response.status === 204) return undefined as T;
    throw new ApiError(result.response.status, null, null);
  }
  return result.data;
}

import "server-only";

import { createRemoteJWKSet, jwtVerify } from "jose";

/** The name Clerk gives its session cookie, which the gateway reads too. */
export const SESSION_COOKIE = "__session";
export const USER_NAME = /^[A-Za-z0-9_-]{1,64}$/;

type Env = Readonly<Record<string, string | undefined>>;

function issuerUrl(env: Env): string {
  const url = env.VISIONA_DEV_ISSUER_URL;
  if (!url) throw new Error("VISIONA_DEV_ISSUER_URL is not set (the local dev issuer's URL)");
  return url.replace(/\/+$/, "");
}

export function tokenTtlSeconds(env: Env): number {
  const ttl = Number(env.VISIONA_DEV_TOKEN_TTL_S ?? "600");
  return Number.isFinite(ttl) && ttl >= 5 ? Math.floor(ttl) : 600;
}

/** A real RS256 session token for `user`, signed by the dev issuer, for this web origin. */
export async function mintSessionToken(env: Env, user: string, origin: string): Promise<string> {
  const response = await fetch(`${issuerUrl(env)}/_dev/tokens`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ user, azp: env.VISIONA_WEB_URL ?? origin, ttl_s: tokenTtlSeconds(env) }),
    cache: "no-store",
  });
  if (!response.ok) throw new Error(`the dev issuer answered ${response.status}`);
  const body = (await response.json()) as { token?: string };
  if (!body.token) throw new Error("the dev issuer answered without a token");
  return body.token;
}

let jwks: { url: string; keys: ReturnType<typeof createRemoteJWKSet> } | null = null;

/**
 * The user of a session token this issuer signed, even an expired one (up to a week old):
 * a refresh renews the session of the person who signed in, never a name the browser picks.
 */
export async function sessionUser(env: Env, token: string): Promise<string | null> {
  const url = `${issuerUrl(env)}/.well-known/jwks.json`;
  if (jwks?.url !== url) jwks = { url, keys: createRemoteJWKSet(new URL(url)) };
  try {
    const { payload } = await jwtVerify(token, jwks.keys, { clockTolerance: 7 * 24 * 3600 });
    return typeof payload.sub === "string" ? payload.sub : null;
  } catch {
    return null;
  }
}

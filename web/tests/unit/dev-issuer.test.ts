// @vitest-environment node
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from "jose";
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";

import { DEV_OPERATOR_ROLE, mintSessionToken, sessionOf } from "@/lib/auth/dev-issuer";

vi.mock("server-only", () => ({}));

const ENV = { VISIONA_DEV_ISSUER_URL: "http://issuer.test/", VISIONA_WEB_URL: "http://localhost:3000", VISIONA_DEV_TOKEN_TTL_S: "20" };
let privateKey: CryptoKey;
let jwks: unknown;
let minted: unknown[] = [];
const fetchMock = vi.fn<typeof fetch>();

beforeAll(async () => {
  const pair = await generateKeyPair("RS256");
  privateKey = pair.privateKey;
  jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: "dev", alg: "RS256", use: "sig" }] };
});

beforeEach(() => {
  minted = [];
  fetchMock.mockReset();
  fetchMock.mockImplementation(async (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    if (url.endsWith("/.well-known/jwks.json")) return Response.json(jwks);
    minted.push(JSON.parse(String(init?.body)));
    return Response.json({ token: "minted" });
  });
  vi.stubGlobal("fetch", fetchMock);
});
afterEach(() => vi.unstubAllGlobals());

function signed(claims: Record<string, unknown>): Promise<string> {
  // Expired an hour ago: a renewal still knows whose session it was.
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT(claims).setProtectedHeader({ alg: "RS256", kid: "dev" }).setSubject("user_ops").setIssuedAt(now - 7200).setExpirationTime(now - 3600).sign(privateKey);
}

describe("the dev issuer's sessions", () => {
  it("asks for the operator role only for an operator's session", async () => {
    await mintSessionToken(ENV, { user: "ops", role: DEV_OPERATOR_ROLE }, "http://localhost:3000");
    await mintSessionToken(ENV, { user: "alice", role: null }, "http://localhost:3000");
    expect(minted).toEqual([
      { user: "ops", azp: "http://localhost:3000", ttl_s: 20, role: "operator" },
      { user: "alice", azp: "http://localhost:3000", ttl_s: 20 },
    ]);
  });

  it("renews a session with the role its token carried, and none when it carried none", async () => {
    expect(await sessionOf(ENV, await signed({ metadata: { role: "operator" } }))).toEqual({ user: "user_ops", role: "operator" });
    expect(await sessionOf(ENV, await signed({}))).toEqual({ user: "user_ops", role: null });
    expect(await sessionOf(ENV, await signed({ metadata: { role: ["operator"] } }))).toEqual({ user: "user_ops", role: null });
    expect(await sessionOf(ENV, "not-a-token")).toBeNull();
  });
});

import { MAX_RENEW_AHEAD_S, renewAheadS, renewDelayMs, retryRenewalMs, shouldRenew } from "@/lib/auth/renewal";

import { fakeToken } from "./tokens";

const NOW = 1_800_000_000_000;
const nowS = NOW / 1000;

describe("session renewal schedule", () => {
  it("renews a minute ahead of a long-lived token", () => {
    const token = fakeToken({ iat: nowS, exp: nowS + 600 });
    expect(renewAheadS(token)).toBe(MAX_RENEW_AHEAD_S);
    expect(renewDelayMs(token, NOW)).toBe(540_000);
    expect(shouldRenew(token, NOW + 539_000)).toBe(false);
    expect(shouldRenew(token, NOW + 541_000)).toBe(true);
  });

  it("renews a short-lived token a third of its life ahead, not at once", () => {
    const token = fakeToken({ iat: nowS, exp: nowS + 30 });
    expect(renewAheadS(token)).toBe(10);
    expect(renewDelayMs(token, NOW)).toBe(20_000);
    expect(shouldRenew(token, NOW)).toBe(false);
  });

  it("renews at once an expired token or one it cannot read", () => {
    expect(renewDelayMs(fakeToken({ iat: nowS - 700, exp: nowS - 100 }), NOW)).toBe(0);
    expect(shouldRenew(fakeToken({ iat: nowS - 700, exp: nowS - 100 }), NOW)).toBe(true);
    expect(shouldRenew("not-a-token", NOW)).toBe(true);
    expect(renewDelayMs("not-a-token", NOW)).toBe(0);
  });

  it("takes a minute ahead when the token does not say when it was issued", () => {
    expect(renewAheadS(fakeToken({ exp: nowS + 600 }))).toBe(MAX_RENEW_AHEAD_S);
  });

  it("tries again after failures sooner first, then up to half a minute apart", () => {
    expect([1, 2, 3, 4].map(retryRenewalMs)).toEqual([1000, 2000, 4000, 8000]);
    expect(retryRenewalMs(40)).toBe(30_000);
  });
});

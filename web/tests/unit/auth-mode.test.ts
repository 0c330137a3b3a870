import { authMode, devAuthRefusal, devRequestRefusal, isLoopbackHost } from "@/lib/auth/mode";

describe("auth mode", () => {
  it("is clerk unless dev is asked for", () => {
    expect(authMode({})).toBe("clerk");
    expect(authMode({ VISIONA_AUTH_MODE: "clerk" })).toBe("clerk");
    expect(authMode({ VISIONA_AUTH_MODE: " DEV " })).toBe("dev");
    expect(authMode({ VISIONA_AUTH_MODE: "development" })).toBe("clerk");
  });
});

describe("dev sign-in refusal rules", () => {
  const dev = { VISIONA_AUTH_MODE: "dev" };

  it("never refuses clerk mode", () => {
    expect(devAuthRefusal({ CLERK_SECRET_KEY: "sk_live_x", NODE_ENV: "production" })).toBeNull();
  });

  it("runs in a development server with test keys or none", () => {
    expect(devAuthRefusal({ ...dev, NODE_ENV: "development" })).toBeNull();
    expect(devAuthRefusal({ ...dev, CLERK_SECRET_KEY: "sk_test_abc" })).toBeNull();
  });

  it.each([
    ["CLERK_SECRET_KEY", "sk_live_abc"],
    ["NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY", "pk_live_abc"],
    ["CLERK_PUBLISHABLE_KEY", "pk_live_abc"],
  ])("refuses a live Clerk key in %s", (name, value) => {
    expect(devAuthRefusal({ ...dev, NODE_ENV: "development", [name]: value })).toMatch(/live Clerk key/);
  });

  it.each(["http://localhost:3000", "http://127.0.0.1:3000", "http://[::1]:3000", "http://app.localhost"])(
    "runs a production build on the loopback origin %s",
    (origin) => {
      expect(devAuthRefusal({ ...dev, NODE_ENV: "production", VISIONA_WEB_URL: origin })).toBeNull();
    },
  );

  it.each([undefined, "", "https://visiona.example", "http://10.0.0.5:3000", "http://localhost.evil.com", "not a url"])(
    "refuses a production build on the origin %s",
    (origin) => {
      expect(devAuthRefusal({ ...dev, NODE_ENV: "production", VISIONA_WEB_URL: origin })).toMatch(/loopback origin/);
    },
  );

  it("refuses a request for a public host, whatever the build", () => {
    const env = { ...dev, NODE_ENV: "development" };
    expect(devRequestRefusal(env, "localhost:3000")).toBeNull();
    expect(devRequestRefusal(env, "127.0.0.1:3000")).toBeNull();
    expect(devRequestRefusal(env, "visiona.example")).toMatch(/only on localhost/);
    expect(devRequestRefusal(env, null)).toMatch(/only on localhost/);
    expect(devRequestRefusal({ NODE_ENV: "production" }, "visiona.example")).toBeNull();
  });

  it("knows loopback hosts", () => {
    expect(isLoopbackHost("127.1.2.3:80")).toBe(true);
    expect(isLoopbackHost("[::1]:3000")).toBe(true);
    expect(isLoopbackHost("128.0.0.1")).toBe(false);
    expect(isLoopbackHost("localhost.example.com")).toBe(false);
  });
});

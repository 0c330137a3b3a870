import {
  deathWords,
  failureWords,
  formatAge,
  outboxHealth,
  parseAmount,
  reasonProblem,
  secondsSince,
  sectionOf,
  serviceName,
  stepWords,
  userIdProblem,
} from "@/components/admin/admin-words";

describe("the operator console's words", () => {
  it("says an age at a glance, from seconds to days", () => {
    expect(formatAge(0)).toBe("0 s");
    expect(formatAge(59.9)).toBe("59 s");
    expect(formatAge(60)).toBe("1 min");
    expect(formatAge(600)).toBe("10 min");
    expect(formatAge(3600)).toBe("1 h");
    expect(formatAge(3600 + 5 * 60)).toBe("1 h 5 min");
    expect(formatAge(86400)).toBe("1 d");
    expect(formatAge(2 * 86400 + 4 * 3600 + 59)).toBe("2 d 4 h");
    expect(formatAge(-5)).toBe("0 s");
  });

  it("counts seconds since a time, never negative", () => {
    const now = Date.parse("2026-12-07T12:00:00Z");
    expect(secondsSince("2026-12-07T11:50:00Z", now)).toBe(600);
    expect(secondsSince("2026-12-07T12:00:10Z", now)).toBe(0);
    expect(secondsSince("not a date", now)).toBe(0);
  });

  it("names a job's next step and why it failed, unknown codes still as words", () => {
    expect(stepWords("poll")).toBe("Asking the provider");
    expect(stepWords("ask_credits")).toBe("Asking billing for credits");
    expect(stepWords("some_new_step")).toBe("Some new step");
    expect(stepWords(null)).toBeNull();
    expect(failureWords("operator_failed")).toBe("Stopped by support");
    expect(failureWords("gpu_melted")).toBe("Gpu melted");
    expect(failureWords(null)).toBeNull();
  });

  it("says why an event died", () => {
    expect(deathWords("rejected")).toMatch(/could not handle it/);
    expect(deathWords("delivery_limit")).toBe("Failed too many times");
    expect(deathWords(null)).toBe("Unknown");
    expect(serviceName("billing")).toBe("Billing");
  });

  it("tells an outbox that is up to date, publishing, or behind", () => {
    expect(outboxHealth(0, 0)).toEqual({ label: "Up to date", tone: "success" });
    expect(outboxHealth(3, 2)).toEqual({ label: "Publishing", tone: "info" });
    expect(outboxHealth(1, 90)).toEqual({ label: "Behind", tone: "warning" });
  });

  it("requires a reason of at most 500 characters", () => {
    expect(reasonProblem("")).toMatch(/Say why/);
    expect(reasonProblem("   \n ")).toMatch(/Say why/);
    expect(reasonProblem("ticket 42")).toBeNull();
    expect(reasonProblem("x".repeat(500))).toBeNull();
    expect(reasonProblem("x".repeat(501))).toMatch(/500 characters \(now 501\)/);
  });

  it("checks a user id as the gateway does", () => {
    expect(userIdProblem("user_2abcDEF-9")).toBeNull();
    expect(userIdProblem("  user_alice  ")).toBeNull();
    expect(userIdProblem("")).toMatch(/Enter/);
    expect(userIdProblem("user alice")).toMatch(/only letters/);
    expect(userIdProblem("user/../x")).toMatch(/only letters/);
    expect(userIdProblem("u".repeat(129))).toMatch(/only letters/);
  });

  it("reads a whole number of credits from 1 to a million", () => {
    expect(parseAmount(" 30 ")).toEqual({ amount: 30 });
    expect(parseAmount("1000000")).toEqual({ amount: 1_000_000 });
    for (const typed of ["", "0", "-5", "2.5", "1e3", "ten", "1000001"]) {
      expect(parseAmount(typed)).toHaveProperty("problem");
    }
  });

  it("keeps the section named in the URL, else the first", () => {
    expect(sectionOf("users")).toBe("users");
    expect(sectionOf("dead-letters")).toBe("dead-letters");
    expect(sectionOf("nonsense")).toBe("jobs");
    expect(sectionOf(null)).toBe("jobs");
  });
});

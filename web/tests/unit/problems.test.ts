import { humanProblem, KNOWN_CODES } from "@/lib/problems";

describe("problem to message", () => {
  it("says a known code in words with a way forward", () => {
    const human = humanProblem({ code: "insufficient_credits", status: 402, detail: "required 5 > available 0" }, 402);
    expect(human.title).toBe("Not enough credits");
    expect(human.action).toEqual({ kind: "link", href: "/billing", label: "Buy credits" });
    expect(human.message).not.toContain("required 5");
  });

  it("adds the wait a 429 asked for", () => {
    const human = humanProblem({ code: "rate_limited", status: 429 }, 429, 7);
    expect(human.message).toMatch(/Try again in 7 s\./);
    expect(human.action.kind).toBe("retry");
    expect(human.retryAfterS).toBe(7);
  });

  it("says a 503 is temporary", () => {
    expect(humanProblem({ code: "service_unavailable", status: 503 }, 503, 2).title).toMatch(/catching its breath/);
  });

  it("names the field of a validation error", () => {
    const human = humanProblem(
      { code: "validation_error", status: 422, errors: [{ loc: ["body", "name"], msg: "String should have at most 80 characters" }] },
      422,
    );
    expect(human.message).toContain("name: String should have at most 80 characters");
  });

  it("gives the size limit of a too large photo", () => {
    expect(humanProblem({ code: "photo_too_large", max_bytes: 20 * 1024 * 1024 }, 413).message).toContain("20 MB");
  });

  it("falls back by status, then to a generic message, never to raw JSON", () => {
    expect(humanProblem({ code: "something_new" }, 409).title).toBe("That changed meanwhile");
    expect(humanProblem(null, 502).title).toMatch(/wrong on our side/);
    expect(humanProblem(null, 0).title).toMatch(/out of reach/);
    expect(humanProblem({ code: "account_erasing" }, 409).action).toMatchObject({ kind: "link", href: "/account" });
  });

  it("tells an operator what a refused claw-back means, not to buy credits", () => {
    const problem = { code: "insufficient_credits", status: 409, detail: "available 20 < 21" };
    const forUser = humanProblem(problem, 409);
    const forOperator = humanProblem(problem, 409, null, "operator");
    expect(forUser.action).toMatchObject({ href: "/billing" });
    expect(forOperator.title).toBe("Not that many credits to take back");
    expect(forOperator.message).toMatch(/nothing was changed/);
    expect(forOperator.action.kind).toBe("none");
    // Codes without operator words read the same for both.
    expect(humanProblem({ code: "job_finished" }, 409, null, "operator")).toEqual(humanProblem({ code: "job_finished" }, 409));
  });

  it("has a message for every code the UI relies on", () => {
    for (const code of [
      "prompt_refused",
      "model_unavailable",
      "account_erasing",
      "cross_site_request",
      "token_expired",
      // The operator console's
      "reason_required",
      "job_finished",
      "job_not_found",
      "dead_letter_not_found",
      "consumer_not_found",
    ]) {
      expect(KNOWN_CODES).toContain(code);
    }
  });
});

import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import type { ReactNode } from "react";
import { toast } from "react-toastify";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { CreditDialog } from "@/components/admin/credit-dialog";
import { FailJob } from "@/components/admin/job-actions";
import { UserLookup } from "@/components/admin/user-lookup";
import { ProblemAudience } from "@/components/app/problem-notice";
import { ApiContext, createApiClient, type Schemas } from "@/lib/api/client";

vi.mock("react-toastify", () => ({ toast: Object.assign(vi.fn(), { success: vi.fn(), info: vi.fn(), error: vi.fn() }) }));
vi.mock("next/navigation", () => ({ useSearchParams: () => new URLSearchParams("user=user_prefilled") }));

const JOB: Schemas["AdminJob"] = {
  kind: "generation",
  id: "0b6f5f8e-1c1d-4f63-a0c8-5a4c1e2d3f40",
  user_id: "user_alice",
  status: "running",
  work: "poll",
  work_after: null,
  work_attempts: 2,
  leased: false,
  provider_status: "processing",
  provider_seen_at: null,
  failure_reason: null,
  created_at: "2026-12-07T11:00:00Z",
  updated_at: "2026-12-07T11:00:00Z",
};

function entry(id: number, delta: number): Schemas["LedgerEntry"] {
  return { id, kind: "adjustment", delta_balance: delta, delta_held: 0, balance_after: 0, available_after: 0, reference: null, reason: `entry ${id}`, created_at: "2026-12-07T10:00:00Z" };
}

type Call = { method: string; url: URL; headers: Headers; body: unknown };
let calls: Call[] = [];
const fetchMock = vi.fn<typeof fetch>();

function json(body: unknown, status = 200, type = "application/json"): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": type } });
}

function answer(respond: (call: Call) => Response) {
  fetchMock.mockImplementation(async (input) => {
    const request = input as Request;
    const text = await request.text();
    const call = { method: request.method, url: new URL(request.url), headers: request.headers, body: text ? (JSON.parse(text) as unknown) : null };
    calls.push(call);
    return respond(call);
  });
}

function renderWithApi(children: ReactNode) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false }, mutations: { retry: false } } });
  const api = createApiClient("http://gateway.test", async () => "token-1");
  render(
    <QueryClientProvider client={client}>
      <ApiContext.Provider value={{ api, baseUrl: "http://gateway.test" }}>
        <ProblemAudience.Provider value="operator">{children}</ProblemAudience.Provider>
      </ApiContext.Provider>
    </QueryClientProvider>,
  );
  return client;
}

beforeEach(() => {
  calls = [];
  fetchMock.mockReset();
  vi.mocked(toast.success).mockReset();
  vi.stubGlobal("fetch", fetchMock);
});
afterEach(() => vi.unstubAllGlobals());

describe("credits by hand", () => {
  const credits = { balance: 20, held: 5, available: 15 };

  it("sends nothing until an amount and a reason are given, then grants once with a key", async () => {
    answer(() => json({ applied: true, balance: 50, available: 45 }));
    const user = userEvent.setup();
    renderWithApi(<CreditDialog userId="user_alice" change="grant" credits={credits} />);
    await user.click(screen.getByRole("button", { name: "Grant credits" }));
    const dialog = await screen.findByRole("dialog");
    await user.click(within(dialog).getByRole("button", { name: "Grant credits" }));
    expect(within(dialog).getByText("Enter a whole number of credits.")).toBeInTheDocument();
    expect(within(dialog).getByText(/Say why/)).toBeInTheDocument();

    await user.type(within(dialog).getByLabelText("Credits"), "30");
    await user.type(within(dialog).getByLabelText("Reason"), "  ticket 7: outage  ");
    expect(fetchMock).not.toHaveBeenCalled();
    await user.click(within(dialog).getByRole("button", { name: "Grant 30 credits" }));

    await waitFor(() => expect(screen.queryByRole("dialog")).not.toBeInTheDocument());
    expect(calls).toHaveLength(1);
    expect(calls[0]!.method).toBe("POST");
    expect(calls[0]!.url.pathname).toBe("/v1/admin/users/user_alice/credits/grant");
    expect(calls[0]!.body).toEqual({ amount: 30, reason: "ticket 7: outage" });
    expect(calls[0]!.headers.get("Idempotency-Key")).toMatch(/^[0-9a-f-]{36}$/);
    expect(toast.success).toHaveBeenCalledWith(expect.stringContaining("Granted 30 credits to user_alice. Balance now 50 credits (45 available)."), expect.anything());
  });

  it("says in words that a claw-back past what is available was refused", async () => {
    answer(() => json({ status: 409, code: "insufficient_credits", detail: "available 15 < 16" }, 409, "application/problem+json"));
    const user = userEvent.setup();
    renderWithApi(<CreditDialog userId="user_alice" change="clawback" credits={credits} />);
    await user.click(screen.getByRole("button", { name: "Claw back credits" }));
    const dialog = await screen.findByRole("dialog");
    expect(dialog).toHaveTextContent("has 20 credits, 15 available");
    await user.type(within(dialog).getByLabelText("Credits"), "16");
    await user.type(within(dialog).getByLabelText("Reason"), "fraud");
    await user.click(within(dialog).getByRole("button", { name: "Take back 16 credits" }));

    const problem = await within(dialog).findByRole("alert");
    expect(problem).toHaveTextContent("Not that many credits to take back");
    expect(problem).toHaveTextContent("insufficient_credits");
    expect(problem).not.toHaveTextContent("Buy");
    expect(screen.getByRole("dialog")).toBeInTheDocument();
  });
});

describe("failing a stuck job", () => {
  it("waits for a reason, says the held credits are released, and fails it", async () => {
    answer(() => json({ job: { ...JOB, status: "failed", work: null, failure_reason: "operator_failed" }, failed: true }));
    const user = userEvent.setup();
    const client = renderWithApi(<FailJob job={JOB} />);
    const invalidate = vi.spyOn(client, "invalidateQueries");
    await user.click(screen.getByRole("button", { name: `Fail generation ${JOB.id}` }));
    const dialog = await screen.findByRole("alertdialog");
    expect(dialog).toHaveTextContent("the credits it holds are released");
    const confirm = within(dialog).getByRole("button", { name: "Fail generation" });
    expect(confirm).toBeDisabled();
    await user.type(within(dialog).getByLabelText("Reason"), "   ");
    expect(confirm).toBeDisabled();
    await user.type(within(dialog).getByLabelText("Reason"), "ticket 42: stuck");
    await user.click(confirm);

    await waitFor(() => expect(screen.queryByRole("alertdialog")).not.toBeInTheDocument());
    expect(calls.map((c) => [c.method, c.url.pathname, c.body])).toEqual([
      ["POST", `/v1/admin/jobs/generation/${JOB.id}/fail`, { reason: "ticket 42: stuck" }],
    ]);
    expect(toast.success).toHaveBeenCalledWith(expect.stringMatching(/credits it held are being released/), expect.anything());
    expect(invalidate).toHaveBeenCalledWith({ queryKey: ["admin"] });
  });
});

describe("looking a user up", () => {
  it("asks once with the reason, then pages each list by its own cursor", async () => {
    answer(({ url }) => {
      const ledgerCursor = url.searchParams.get("ledger_cursor");
      return json({
        user_id: "user_prefilled",
        credits: { balance: 20, held: 0, available: 20 },
        ledger: ledgerCursor ? [entry(1, 30)] : [entry(2, -10)],
        ledger_next_cursor: ledgerCursor ? null : "L2",
        models: [],
        models_next_cursor: null,
        generations: ledgerCursor ? [] : [{ ...JOB, user_id: "user_prefilled", status: "succeeded", work: null }],
        generations_next_cursor: null,
      });
    });
    const user = userEvent.setup();
    renderWithApi(<UserLookup />);
    expect(screen.getByLabelText("User id")).toHaveValue("user_prefilled");
    await user.click(screen.getByRole("button", { name: "Look up" }));
    expect(screen.getByText(/Say why/)).toBeInTheDocument();
    expect(fetchMock).not.toHaveBeenCalled();

    await user.type(screen.getByLabelText("Reason"), "ticket 7");
    await user.click(screen.getByRole("button", { name: "Look up" }));
    expect(await screen.findByTestId("lookup-balance")).toHaveTextContent("20");
    expect(screen.getByText(/never shown here/)).toBeInTheDocument();
    expect(calls).toHaveLength(1);
    expect(calls[0]!.url.pathname).toBe("/v1/admin/users/user_prefilled");
    expect(calls[0]!.url.searchParams.get("reason")).toBe("ticket 7");
    // Ended jobs have nothing to retry or fail.
    expect(screen.queryByRole("button", { name: /^Fail generation/ })).not.toBeInTheDocument();

    await user.click(screen.getByRole("button", { name: "Load more" }));
    await waitFor(() => expect(calls).toHaveLength(2));
    const more = calls[1]!.url.searchParams;
    expect(more.get("ledger_cursor")).toBe("L2");
    expect(more.get("models_cursor")).toBeNull();
    expect(more.get("generations_cursor")).toBeNull();
    expect(more.get("reason")).toBe("ticket 7");
    expect((await screen.findAllByText("entry 1")).length).toBeGreaterThan(0);
    expect(screen.getAllByText("entry 2").length).toBeGreaterThan(0);
  });
});

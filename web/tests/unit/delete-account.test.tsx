import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import type { ReactNode } from "react";
import { vi } from "vitest";

import { DangerZone } from "@/components/account/delete-account";
import { ApiContext, createApiClient } from "@/lib/api/client";

const DELETION = {
  id: "6f1c1f5e-8f2c-4d8e-9d8e-1f0a1c2b3d4e",
  status: "scheduled",
  source: "api",
  round: 0,
  services: {},
  removed: 0,
  requested_at: "2026-12-07T04:00:00Z",
  completed_at: null,
};

function withApi(children: ReactNode, client: QueryClient) {
  const api = createApiClient("http://gateway.test", async () => "token-1");
  return (
    <QueryClientProvider client={client}>
      <ApiContext.Provider value={{ api, baseUrl: "http://gateway.test" }}>{children}</ApiContext.Provider>
    </QueryClientProvider>
  );
}

describe("deleting the account", () => {
  const fetchMock = vi.fn<typeof fetch>();
  beforeEach(() => {
    fetchMock.mockReset();
    vi.stubGlobal("fetch", fetchMock);
  });
  afterEach(() => vi.unstubAllGlobals());

  it("explains what goes and what the law keeps, and deletes only after the phrase is typed", async () => {
    fetchMock.mockResolvedValue(new Response(JSON.stringify(DELETION), { status: 202, headers: { "content-type": "application/json" } }));
    const client = new QueryClient({ defaultOptions: { mutations: { retry: false } } });
    const onRequested = vi.fn();
    const user = userEvent.setup();
    render(withApi(<DangerZone onRequested={onRequested} />, client));

    await user.click(screen.getByRole("button", { name: "Delete my account…" }));
    const dialog = await screen.findByRole("alertdialog");
    expect(dialog).toHaveTextContent("at our training provider (Replicate)");
    expect(dialog).toHaveTextContent("Kept, because the law requires it");
    const destroy = screen.getByRole("button", { name: "Delete my account" });
    expect(destroy).toBeDisabled();

    const field = screen.getByLabelText(/to confirm/);
    await user.type(field, "delete my");
    expect(destroy).toBeDisabled();
    expect(screen.getByText("Keep typing…")).toBeInTheDocument();
    await user.type(field, "{Enter}");
    expect(fetchMock).not.toHaveBeenCalled(); // Enter before the phrase is complete does nothing

    await user.type(field, " Account ");
    expect(destroy).toBeEnabled();
    await user.click(destroy);

    await waitFor(() => expect(onRequested).toHaveBeenCalled());
    expect(fetchMock).toHaveBeenCalledTimes(1);
    const request = fetchMock.mock.calls[0]![0] as Request;
    expect(request.method).toBe("DELETE");
    expect(new URL(request.url).pathname).toBe("/v1/me");
    expect(request.headers.get("Authorization")).toBe("Bearer token-1");
    expect(client.getQueryData(["deletion"])).toMatchObject({ status: "scheduled" });
    await waitFor(() => expect(screen.queryByRole("alertdialog")).not.toBeInTheDocument());
  });

  it("keeps the account when the person changes their mind, and forgets what was typed", async () => {
    const client = new QueryClient();
    const user = userEvent.setup();
    render(withApi(<DangerZone onRequested={vi.fn()} />, client));
    await user.click(screen.getByRole("button", { name: "Delete my account…" }));
    await user.type(screen.getByLabelText(/to confirm/), "delete my account");
    await user.click(screen.getByRole("button", { name: "Keep my account" }));
    expect(screen.queryByRole("alertdialog")).not.toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Delete my account…" }));
    expect(screen.getByLabelText(/to confirm/)).toHaveValue("");
    expect(fetchMock).not.toHaveBeenCalled();
  });
});

import { act, render, screen } from "@testing-library/react";
import { vi } from "vitest";

import { PENDING_KEY, SLOW_AFTER_MS } from "@/components/billing/checkout-return";
import { CheckoutBanner } from "@/components/billing/checkout-banner";
import { useCheckoutReturn } from "@/components/billing/use-checkout-return";
import type { LedgerLike } from "@/components/billing/checkout-return";

// Next's router is the boundary here (not ours): the address the page was opened with, and
// where it is replaced to.
const replace = vi.fn();
let search = "";
vi.mock("next/navigation", () => ({
  useRouter: () => ({ replace }),
  usePathname: () => "/billing",
  useSearchParams: () => new URLSearchParams(search),
}));

function Harness({ balance, ledger }: { balance?: number; ledger?: LedgerLike[] }) {
  const { state, dismiss } = useCheckoutReturn({ balance, ledger });
  return <CheckoutBanner state={state} onDismiss={dismiss} />;
}

const SESSION = "cs_test_hook1";

describe("the return banner on the billing page", () => {
  beforeEach(() => {
    replace.mockClear();
    window.sessionStorage.clear();
    vi.useFakeTimers();
  });
  afterEach(() => vi.useRealTimers());

  it("waits for the credits, takes the query out of the address, and says when they arrive", () => {
    search = `checkout=success&session_id=${SESSION}`;
    window.sessionStorage.setItem(
      PENDING_KEY,
      JSON.stringify({ sessionId: SESSION, kind: "pack", itemId: "starter", name: "Starter pack", credits: 200, balanceBefore: 0, startedAt: Date.now() }),
    );
    const { rerender } = render(<Harness />);
    expect(screen.getByRole("status")).toHaveTextContent("Payment received — your credits are on their way");
    expect(replace).toHaveBeenCalledWith("/billing", { scroll: false });
    expect(window.sessionStorage.getItem(PENDING_KEY)).toBeNull();

    rerender(<Harness balance={0} />); // the webhook has not come yet
    expect(screen.getByRole("status")).toHaveTextContent("on their way");
    rerender(<Harness balance={200} />);
    expect(screen.getByRole("status")).toHaveTextContent("200 credits added");
  });

  it("turns calm after two minutes and still updates", () => {
    search = `checkout=success&session_id=${SESSION}`;
    const { rerender } = render(<Harness balance={40} />);
    act(() => {
      vi.advanceTimersByTime(SLOW_AFTER_MS - 1000);
    });
    expect(screen.getByRole("status")).toHaveTextContent("on their way");
    act(() => {
      vi.advanceTimersByTime(1000);
    });
    expect(screen.getByRole("status")).toHaveTextContent("Still processing — it can take a minute; this page will update");
    rerender(<Harness balance={40} ledger={[{ kind: "purchase", reference: SESSION, delta_balance: 1000, created_at: new Date().toISOString() }]} />);
    expect(screen.getByRole("status")).toHaveTextContent("1,000 credits added");
  });

  it("says a canceled checkout charged nothing, and can be dismissed", () => {
    search = "checkout=canceled";
    render(<Harness />);
    expect(screen.getByRole("status")).toHaveTextContent("Checkout canceled — nothing was charged");
    act(() => {
      screen.getByRole("button", { name: "Dismiss this message" }).click();
    });
    expect(screen.getByRole("status")).toBeEmptyDOMElement();
  });

  it("shows nothing on a plain visit and leaves the address alone", () => {
    search = "";
    render(<Harness balance={10} />);
    expect(screen.getByRole("status")).toBeEmptyDOMElement();
    expect(replace).not.toHaveBeenCalled();
  });
});

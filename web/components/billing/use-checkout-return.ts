"use client";

import { usePathname, useRouter, useSearchParams } from "next/navigation";
import { useEffect, useReducer, useRef } from "react";

import {
  initialReturnState,
  parseCheckoutReturn,
  reduceReturn,
  SLOW_AFTER_MS,
  takePending,
  type LedgerLike,
  type ReturnState,
} from "@/components/billing/checkout-return";
import { useLiveEvents } from "@/lib/events/use-event-stream";

/**
 * The return from Checkout on this page load: reads `?checkout=…&session_id=…` once, then
 * takes them out of the address (a reload does not show the banner again), and feeds the
 * state machine with what it sees: balances (the query and the live `billing.credits.changed.v1`
 * events), the newest ledger entries, and time.
 */
export function useCheckoutReturn({ balance, ledger }: { balance: number | undefined; ledger: readonly LedgerLike[] | undefined }) {
  const searchParams = useSearchParams();
  const router = useRouter();
  const pathname = usePathname();
  const [state, dispatch] = useReducer(reduceReturn, null, (): ReturnState | null =>
    initialReturnState(parseCheckoutReturn(searchParams), Date.now()),
  );

  // Once shown, the query goes: a reload or a shared link does not repeat the banner.
  const cleaned = useRef(false);
  useEffect(() => {
    if (cleaned.current || !state) return;
    cleaned.current = true;
    if (searchParams.has("checkout") || searchParams.has("session_id")) {
      const rest = new URLSearchParams(searchParams.toString());
      rest.delete("checkout");
      rest.delete("session_id");
      const query = rest.toString();
      router.replace(query ? `${pathname}?${query}` : pathname, { scroll: false });
    }
    if (state.phase === "waiting") {
      dispatch({ type: "restore", pending: takePending(window.sessionStorage, state.sessionId, Date.now()) });
    }
  }, [state, searchParams, router, pathname]);

  useEffect(() => {
    if (balance !== undefined) dispatch({ type: "balance", balance });
  }, [balance]);

  useEffect(() => {
    if (ledger) dispatch({ type: "ledger", entries: ledger });
  }, [ledger]);

  useLiveEvents((event) => {
    if (event.type === "billing.credits.changed.v1" && typeof event.data.balance === "number") {
      dispatch({ type: "balance", balance: event.data.balance });
    }
  });

  const since = state?.phase === "waiting" ? state.since : null;
  useEffect(() => {
    if (since === null) return;
    const timer = setTimeout(() => dispatch({ type: "tick", now: Date.now() }), Math.max(0, since + SLOW_AFTER_MS - Date.now()));
    return () => clearTimeout(timer);
  }, [since]);

  return { state, dismiss: () => dispatch({ type: "dismiss" }) };
}

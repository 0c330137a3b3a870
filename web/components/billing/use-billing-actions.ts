"use client";

import { useMutation } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";

import { savePending } from "@/components/billing/checkout-return";
import { IntentKeys } from "@/components/billing/intent";
import { ApiError, dataOf, idempotencyKey, useApi } from "@/lib/api/client";

export type Offer = { kind: "pack" | "plan"; id: string; name: string; credits: number };

/** Answers that are not failures but a state to show where the button is (no toast). */
const IN_PLACE = new Set(["plan_already_active", "no_billing_account"]);

type Outcome<T> = { ok: T } | { refused: ApiError };

async function inPlace<T>(run: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: await run() };
  } catch (error) {
    if (error instanceof ApiError && IN_PLACE.has(error.human.code)) return { refused: error };
    throw error;
  }
}

/** Leave for a Stripe page. The page stays until the browser goes, so the button says so. */
function go(url: string) {
  window.location.assign(url);
}

/**
 * Buy a pack or subscribe (Stripe Checkout), and open the billing portal. Each sends the
 * browser away; while it goes, every billing button is disabled ("Opening checkout…").
 * Coming back with the browser's Back button restores this page from its cache: the buttons
 * come back to life and the next click is a new intent.
 */
export function useBillingActions({ balance }: { balance: number | undefined }) {
  const api = useApi();
  const keys = useRef(new IntentKeys(idempotencyKey));
  const [leaving, setLeaving] = useState<string | null>(null);
  const [refusal, setRefusal] = useState<{ target: string; error: ApiError } | null>(null);

  useEffect(() => {
    const onShow = (event: PageTransitionEvent) => {
      if (event.persisted) {
        setLeaving(null);
        keys.current.clear();
      }
    };
    window.addEventListener("pageshow", onShow);
    return () => window.removeEventListener("pageshow", onShow);
  }, []);

  const checkout = useMutation({
    mutationFn: async (offer: Offer) => {
      const intent = `${offer.kind}:${offer.id}`;
      try {
        const outcome = await inPlace(async () =>
          dataOf(
            await api.POST("/v1/billing/checkout", {
              body: { kind: offer.kind, item_id: offer.id },
              params: { header: { "Idempotency-Key": keys.current.keyFor(intent) } },
            }),
          ),
        );
        keys.current.settle(intent, "refused" in outcome ? outcome.refused : null);
        return outcome;
      } catch (error) {
        keys.current.settle(intent, error);
        throw error;
      }
    },
    onMutate: () => setRefusal(null),
    onSuccess: (outcome, offer) => {
      if ("refused" in outcome) {
        setRefusal({ target: `${offer.kind}:${offer.id}`, error: outcome.refused });
        return;
      }
      savePending(window.sessionStorage, {
        sessionId: outcome.ok.session_id,
        kind: offer.kind,
        itemId: offer.id,
        name: offer.name,
        credits: offer.credits,
        balanceBefore: balance ?? null,
        startedAt: Date.now(),
      });
      setLeaving(`${offer.kind}:${offer.id}`);
      go(outcome.ok.url);
    },
  });

  const portal = useMutation({
    mutationFn: async () => inPlace(async () => dataOf(await api.POST("/v1/billing/portal", {}))),
    onMutate: () => setRefusal(null),
    onSuccess: (outcome) => {
      if ("refused" in outcome) {
        setRefusal({ target: "portal", error: outcome.refused });
        return;
      }
      setLeaving("portal");
      go(outcome.ok.url);
    },
  });

  const busy = leaving !== null || checkout.isPending || portal.isPending;
  /** The offer or "portal" whose button shows progress. */
  const working = leaving ?? (checkout.isPending && checkout.variables ? `${checkout.variables.kind}:${checkout.variables.id}` : portal.isPending ? "portal" : null);

  return {
    buy: (offer: Offer) => checkout.mutate(offer),
    openPortal: () => portal.mutate(),
    busy,
    working,
    refusal,
    clearRefusal: () => setRefusal(null),
  };
}

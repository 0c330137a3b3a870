"use client";

import { CheckCircle2, Clock, Loader2, X, XCircle } from "lucide-react";

import { bannerOf, type ReturnState } from "@/components/billing/checkout-return";
import { Button } from "@/components/ui/button";
import { cn } from "@/lib/utils";

const TONES = {
  info: { box: "border-info/50 bg-info/10", icon: "text-info" },
  success: { box: "border-success/50 bg-success/10", icon: "text-success" },
  warning: { box: "border-warning/50 bg-warning/10", icon: "text-warning" },
  neutral: { box: "border-border bg-card", icon: "text-muted-foreground" },
} as const;

/** The banner after coming back from Stripe Checkout (a live region: its changes are read out). */
export function CheckoutBanner({ state, available, onDismiss }: { state: ReturnState | null; available?: number; onDismiss: () => void }) {
  const banner = bannerOf(state, available);
  // The live region stays mounted so a screen reader hears "N credits added" when it changes.
  return (
    <div role="status" aria-live="polite" aria-atomic="true" className="empty:hidden" data-checkout-phase={state?.phase ?? "none"}>
      {banner ? (
        <div className={cn("mb-6 flex items-start gap-3 rounded-xl border p-4", TONES[banner.tone].box)}>
          {banner.busy ? (
            <Loader2 aria-hidden className={cn("mt-0.5 size-5 shrink-0 animate-spin motion-reduce:animate-none", TONES[banner.tone].icon)} />
          ) : banner.tone === "success" ? (
            <CheckCircle2 aria-hidden className={cn("mt-0.5 size-5 shrink-0", TONES[banner.tone].icon)} />
          ) : banner.tone === "warning" ? (
            <Clock aria-hidden className={cn("mt-0.5 size-5 shrink-0", TONES[banner.tone].icon)} />
          ) : (
            <XCircle aria-hidden className={cn("mt-0.5 size-5 shrink-0", TONES[banner.tone].icon)} />
          )}
          <div className="min-w-0 flex-1">
            <p className="font-semibold">{banner.title}</p>
            <p className="mt-1 text-sm text-foreground/85">{banner.body}</p>
          </div>
          {banner.busy ? null : (
            <Button variant="ghost" size="icon" className="-my-2 -mr-2 size-9" onClick={onDismiss} aria-label="Dismiss this message">
              <X aria-hidden />
            </Button>
          )}
        </div>
      ) : null}
    </div>
  );
}

import type { Metadata } from "next";
import { Suspense } from "react";

import { Billing } from "@/components/billing/billing";

export const metadata: Metadata = { title: "Billing" };

export default function BillingPage() {
  // Billing reads ?checkout=… (the return from Stripe Checkout): useSearchParams needs a boundary.
  return (
    <Suspense>
      <Billing />
    </Suspense>
  );
}

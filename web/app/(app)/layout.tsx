import { Suspense, type ReactNode } from "react";

import { AppShell } from "@/components/app/app-shell";

export default function SignedInLayout({ children }: { children: ReactNode }) {
  // Screens keep their state in the URL (useSearchParams: the gallery's filters and open image,
  // the model and generation on Generate, the return from Stripe Checkout on Billing), which
  // needs a Suspense boundary above them: one here serves every screen.
  return (
    <AppShell>
      <Suspense>{children}</Suspense>
    </AppShell>
  );
}

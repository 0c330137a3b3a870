"use client";

import { useQuery } from "@tanstack/react-query";
import { Check, Coins, CreditCard, ExternalLink, Loader2 } from "lucide-react";
import type { ReactNode } from "react";

import { ProblemNotice } from "@/components/app/problem-notice";
import { PageHeader } from "@/components/app/page-header";
import { pollInterval } from "@/components/billing/checkout-return";
import { CheckoutBanner } from "@/components/billing/checkout-banner";
import { Ledger, LEDGER_PAGE_SIZE } from "@/components/billing/ledger";
import { planStatusView } from "@/components/billing/plan-status";
import { useBillingActions, type Offer } from "@/components/billing/use-billing-actions";
import { usePlans } from "@/components/billing/use-plans";
import { useCheckoutReturn } from "@/components/billing/use-checkout-return";
import { Alert, AlertDescription, AlertTitle } from "@/components/ui/alert";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardFooter, CardHeader, CardTitle } from "@/components/ui/card";
import { Skeleton } from "@/components/ui/skeleton";
import { ApiError, dataOf, useApi, type Schemas } from "@/lib/api/client";
import { useCursorPages } from "@/lib/api/pages";
import { formatCredits, formatMoney } from "@/lib/format";
import { cn } from "@/lib/utils";

type Actions = ReturnType<typeof useBillingActions>;

function count(n: number): string {
  return new Intl.NumberFormat("en").format(n);
}

function Refusal({ error, action }: { error: ApiError; action?: ReactNode }) {
  return (
    <Alert variant="warning" className="mt-3">
      <AlertTitle>{error.human.title}</AlertTitle>
      <AlertDescription className="text-foreground/85">
        <p>{error.human.message}</p>
        {action}
      </AlertDescription>
    </Alert>
  );
}

function ActionButton({ target, actions, children, variant, onClick }: { target: string; actions: Actions; children: ReactNode; variant?: "default" | "outline"; onClick: () => void }) {
  const working = actions.working === target;
  return (
    <Button className="w-full" variant={variant} onClick={onClick} disabled={actions.busy} aria-busy={working || undefined}>
      {working ? (
        <>
          <Loader2 aria-hidden className="animate-spin motion-reduce:animate-none" /> {target === "portal" ? "Opening the portal…" : "Opening checkout…"}
        </>
      ) : (
        children
      )}
    </Button>
  );
}

function BalanceCard({ balance }: { balance: ReturnType<typeof useBalanceQuery> }) {
  return (
    <Card>
      <CardHeader>
        <CardDescription className="flex items-center gap-2">
          <Coins aria-hidden className="size-4 text-warning" /> Credits available
        </CardDescription>
        {balance.data ? (
          <CardTitle className="text-4xl tabular-nums" data-testid="available">
            {count(balance.data.available)}
          </CardTitle>
        ) : (
          <Skeleton className="h-10 w-24" />
        )}
      </CardHeader>
      <CardContent>
        {balance.isError ? (
          <ProblemNotice error={balance.error} onRetry={() => void balance.refetch()} />
        ) : balance.data ? (
          <dl className="grid grid-cols-2 gap-3 text-sm">
            <div className="rounded-lg border p-3">
              <dt className="text-muted-foreground">On hold</dt>
              <dd className="text-lg font-semibold tabular-nums">{count(balance.data.held)}</dd>
              <dd className="text-xs text-muted-foreground">for running work</dd>
            </div>
            <div className="rounded-lg border p-3">
              <dt className="text-muted-foreground">Total</dt>
              <dd className="text-lg font-semibold tabular-nums">{count(balance.data.balance)}</dd>
              <dd className="text-xs text-muted-foreground">owned</dd>
            </div>
          </dl>
        ) : (
          <Skeleton className="h-20" />
        )}
      </CardContent>
    </Card>
  );
}

const LIMIT_WORDS: [keyof Schemas["Limits"], string][] = [
  ["max_concurrent_trainings", "Trainings at a time"],
  ["max_stored_models", "Models kept"],
  ["max_concurrent_generations", "Image jobs at a time"],
];

function LimitsList({ limits, className }: { limits: Schemas["Limits"]; className?: string }) {
  return (
    <ul className={cn("flex flex-col gap-1.5 text-sm", className)}>
      {LIMIT_WORDS.map(([key, words]) => (
        <li key={key} className="flex items-center justify-between gap-3">
          <span className="text-muted-foreground">{words}</span>
          <span className="font-medium tabular-nums">{limits[key]}</span>
        </li>
      ))}
    </ul>
  );
}

function PlanCard({ plans, actions }: { plans: ReturnType<typeof usePlans>; actions: Actions }) {
  if (plans.isPending) return <Skeleton className="h-56 lg:col-span-2" />;
  if (plans.isError) {
    return (
      <div className="lg:col-span-2">
        <ProblemNotice error={plans.error} onRetry={() => void plans.refetch()} />
      </div>
    );
  }
  const { current, prices } = plans.data;
  const view = planStatusView(current, plans.data.plans);
  return (
    <Card className="lg:col-span-2">
      <CardHeader>
        <CardDescription>Your plan</CardDescription>
        <div className="flex flex-wrap items-center gap-2">
          <CardTitle className="text-2xl">{view.name}</CardTitle>
          {view.subscribed ? <Badge variant={view.tone}>{view.label}</Badge> : null}
        </div>
        {view.note ? <p className="text-sm text-muted-foreground">{view.note}</p> : null}
      </CardHeader>
      <CardContent className="grid gap-4 sm:grid-cols-2">
        <div>
          <h3 className="mb-2 text-sm font-semibold">Your limits</h3>
          <LimitsList limits={current.limits} />
        </div>
        <div>
          <h3 className="mb-2 text-sm font-semibold">What things cost</h3>
          <ul className="flex flex-col gap-1.5 text-sm">
            <li className="flex items-center justify-between gap-3">
              <span className="text-muted-foreground">Training a model</span>
              <span className="font-medium tabular-nums">{formatCredits(prices.training)}</span>
            </li>
            <li className="flex items-center justify-between gap-3">
              <span className="text-muted-foreground">Each image</span>
              <span className="font-medium tabular-nums">{formatCredits(prices.generation_image)}</span>
            </li>
          </ul>
        </div>
      </CardContent>
      {view.entitled ? (
        <CardFooter>
          <Button variant="outline" onClick={actions.openPortal} disabled={actions.busy}>
            <CreditCard aria-hidden /> Change or cancel your plan
          </Button>
        </CardFooter>
      ) : null}
    </Card>
  );
}

function enough(credits: number, prices: Schemas["Prices"]): string {
  const trainings = Math.floor(credits / prices.training);
  const images = Math.floor(credits / prices.generation_image);
  const t = trainings > 0 ? `${count(trainings)} model training${trainings === 1 ? "" : "s"}` : null;
  const i = `${count(images)} images`;
  return t ? `Enough for ${t}, or ${i}.` : `Enough for ${i}.`;
}

function Offers({ plans, actions }: { plans: ReturnType<typeof usePlans>; actions: Actions }) {
  if (plans.isPending) {
    return (
      <div className="grid gap-4 sm:grid-cols-2">
        {[0, 1, 2, 3].map((i) => (
          <Skeleton key={i} className="h-52" />
        ))}
      </div>
    );
  }
  if (plans.isError) return null; // The plan card above already says what went wrong.
  const { packs, plans: monthly, prices, current, free_limits } = plans.data;
  const view = planStatusView(current, monthly);
  const refusalFor = (target: string) => (actions.refusal?.target === target ? actions.refusal.error : null);

  return (
    <>
      <section aria-labelledby="packs-title" className="mt-10">
        <h2 id="packs-title" className="text-lg font-semibold">
          Credit packs
        </h2>
        <p className="mb-4 text-sm text-muted-foreground">Pay once; the credits never expire.</p>
        <ul className="grid gap-4 sm:grid-cols-2">
          {packs.map((pack) => {
            const offer: Offer = { kind: "pack", id: pack.id, name: pack.name, credits: pack.credits };
            const refused = refusalFor(`pack:${pack.id}`);
            return (
              <li key={pack.id}>
                <Card className="h-full" data-offer={`pack:${pack.id}`}>
                  <CardHeader>
                    <CardTitle className="text-lg">{pack.name}</CardTitle>
                    <CardDescription>{enough(pack.credits, prices)}</CardDescription>
                  </CardHeader>
                  <CardContent className="flex items-baseline justify-between gap-3">
                    <span className="text-3xl font-semibold tabular-nums">{formatCredits(pack.credits)}</span>
                    <span className="text-xl tabular-nums">{formatMoney(pack.unit_amount, pack.currency)}</span>
                  </CardContent>
                  <CardFooter className="mt-auto flex-col items-stretch">
                    <ActionButton target={`pack:${pack.id}`} actions={actions} onClick={() => actions.buy(offer)}>
                      Buy {pack.name.toLowerCase()} for {formatMoney(pack.unit_amount, pack.currency)}
                    </ActionButton>
                    {refused ? <Refusal error={refused} /> : null}
                  </CardFooter>
                </Card>
              </li>
            );
          })}
        </ul>
      </section>

      <section aria-labelledby="plans-title" className="mt-10">
        <h2 id="plans-title" className="text-lg font-semibold">
          Monthly plans
        </h2>
        <p className="mb-4 text-sm text-muted-foreground">
          Credits every month and higher limits. Without a plan: {free_limits.max_stored_models} model kept, {free_limits.max_concurrent_trainings} training and{" "}
          {free_limits.max_concurrent_generations} image job at a time. Cancel any time in the billing portal.
        </p>
        <ul className="grid gap-4 sm:grid-cols-2">
          {monthly.map((plan) => {
            const offer: Offer = { kind: "plan", id: plan.id, name: plan.name, credits: plan.monthly_credits };
            const mine = view.entitled && current.plan_id === plan.id;
            const refused = refusalFor(`plan:${plan.id}`);
            return (
              <li key={plan.id}>
                <Card className={cn("h-full", mine && "border-primary")} data-offer={`plan:${plan.id}`}>
                  <CardHeader>
                    <div className="flex items-center justify-between gap-2">
                      <CardTitle className="text-lg">{plan.name}</CardTitle>
                      {mine ? (
                        <Badge>
                          <Check aria-hidden /> Your plan
                        </Badge>
                      ) : null}
                    </div>
                    <CardDescription>{formatCredits(plan.monthly_credits)} every month</CardDescription>
                  </CardHeader>
                  <CardContent className="flex flex-col gap-4">
                    <p>
                      <span className="text-3xl font-semibold tabular-nums">{formatMoney(plan.unit_amount, plan.currency)}</span>
                      <span className="text-muted-foreground"> / {plan.interval}</span>
                    </p>
                    <LimitsList limits={plan.limits} />
                  </CardContent>
                  <CardFooter className="mt-auto flex-col items-stretch">
                    {view.entitled ? (
                      <ActionButton target="portal" actions={actions} variant="outline" onClick={actions.openPortal}>
                        {mine ? "Manage in the billing portal" : "Switch in the billing portal"}
                        <ExternalLink aria-hidden />
                      </ActionButton>
                    ) : (
                      <ActionButton target={`plan:${plan.id}`} actions={actions} onClick={() => actions.buy(offer)}>
                        Subscribe to {plan.name} for {formatMoney(plan.unit_amount, plan.currency)} a {plan.interval}
                      </ActionButton>
                    )}
                    {refused ? (
                      <Refusal
                        error={refused}
                        action={
                          refused.human.code === "plan_already_active" ? (
                            <Button size="sm" variant="outline" className="mt-2" onClick={actions.openPortal} disabled={actions.busy}>
                              Open the billing portal
                            </Button>
                          ) : null
                        }
                      />
                    ) : null}
                  </CardFooter>
                </Card>
              </li>
            );
          })}
        </ul>
      </section>
    </>
  );
}

function useBalanceQuery(refetchInterval: number | false) {
  const api = useApi();
  // The same query as the balance chip (key ["balance"]); this page also polls it while a
  // purchase is on its way.
  return useQuery({
    queryKey: ["balance"],
    queryFn: async () => dataOf(await api.GET("/v1/billing/balance")),
    refetchInterval,
  });
}

function useLedgerQuery() {
  const api = useApi();
  return useCursorPages(["ledger", "pages"], async (cursor) =>
    dataOf(await api.GET("/v1/billing/ledger", { params: { query: { limit: LEDGER_PAGE_SIZE, cursor } } })),
  );
}

export function Billing() {
  const ledger = useLedgerQuery();
  const plans = usePlans();
  // Two observers of the one ["balance"] query: the first feeds the return banner, the second
  // polls at the pace the banner's state asks for (fast while credits are on their way).
  const seen = useBalanceQuery(false);
  const checkoutReturn = useCheckoutReturn({ balance: seen.data?.balance, ledger: ledger.data?.pages[0]?.entries });
  const balance = useBalanceQuery(pollInterval(checkoutReturn.state));
  const actions = useBillingActions({ balance: balance.data?.balance });
  const portalRefusal = actions.refusal?.target === "portal" ? actions.refusal.error : null;

  return (
    <>
      <PageHeader
        title="Billing"
        description="Your credits and plan, and every credit in and out."
        actions={
          <Button variant="outline" onClick={actions.openPortal} disabled={actions.busy} aria-busy={actions.working === "portal" || undefined}>
            {actions.working === "portal" ? <Loader2 aria-hidden className="animate-spin motion-reduce:animate-none" /> : <CreditCard aria-hidden />}
            {actions.working === "portal" ? "Opening the portal…" : "Manage subscription / invoices"}
          </Button>
        }
      />
      {portalRefusal ? (
        <div className="-mt-3 mb-6">
          <Refusal error={portalRefusal} />
        </div>
      ) : null}
      <CheckoutBanner state={checkoutReturn.state} available={balance.isFetching ? undefined : balance.data?.available} onDismiss={checkoutReturn.dismiss} />

      <div className="grid gap-4 lg:grid-cols-3">
        <BalanceCard balance={balance} />
        <PlanCard plans={plans} actions={actions} />
      </div>

      <Offers plans={plans} actions={actions} />

      <section aria-labelledby="ledger-title" className="mt-10">
        <h2 id="ledger-title" className="mb-1 text-lg font-semibold">
          Credit history
        </h2>
        <p className="mb-4 text-sm text-muted-foreground">Purchases, monthly credits, and what your trainings and images used. Credits on hold are reserved while a job runs and released if it does not finish.</p>
        <Ledger query={ledger} />
      </section>
    </>
  );
}

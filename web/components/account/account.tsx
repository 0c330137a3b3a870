"use client";

import { useQuery } from "@tanstack/react-query";
import { Check, Copy, UserRound } from "lucide-react";
import { useState } from "react";

import { AuditTrail } from "@/components/account/audit-trail";
import { DangerZone, DeletionProgress } from "@/components/account/delete-account";
import { ExportCard } from "@/components/account/export-card";
import { useDeletion, useMe } from "@/components/account/use-account";
import { PageHeader } from "@/components/app/page-header";
import { ProblemNotice } from "@/components/app/problem-notice";
import { planStatusView } from "@/components/billing/plan-status";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardHeader, CardTitle } from "@/components/ui/card";
import { Skeleton } from "@/components/ui/skeleton";
import { dataOf, useApi } from "@/lib/api/client";

function CopyButton({ value, label }: { value: string; label: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <Button
      variant="ghost"
      size="icon"
      className="size-8"
      aria-label={copied ? `${label} copied` : `Copy ${label}`}
      onClick={() => {
        void navigator.clipboard?.writeText(value).then(() => {
          setCopied(true);
          setTimeout(() => setCopied(false), 2000);
        });
      }}
    >
      {copied ? <Check aria-hidden /> : <Copy aria-hidden />}
    </Button>
  );
}

function Profile() {
  const api = useApi();
  const me = useMe();
  const plans = useQuery({ queryKey: ["plans"], queryFn: async () => dataOf(await api.GET("/v1/billing/plans")) });
  const plan = plans.data ? planStatusView(plans.data.current, plans.data.plans) : null;
  const name = me.data ? [me.data.first_name, me.data.last_name].filter(Boolean).join(" ") : "";

  return (
    <Card className="lg:self-start">
      <CardHeader>
        <CardTitle className="flex items-center gap-2">
          <UserRound aria-hidden className="size-5 text-accent" /> Profile
        </CardTitle>
      </CardHeader>
      <CardContent>
        {me.isPending ? (
          <Skeleton className="h-28" />
        ) : me.isError ? (
          <ProblemNotice error={me.error} onRetry={() => void me.refetch()} />
        ) : (
          <dl className="grid gap-4 text-sm sm:grid-cols-2">
            <div className="min-w-0">
              <dt className="text-muted-foreground">User ID</dt>
              <dd className="flex items-center gap-1">
                <span className="truncate font-mono" data-testid="user-id">
                  {me.data.user_id}
                </span>
                <CopyButton value={me.data.user_id} label="user ID" />
              </dd>
            </div>
            <div className="min-w-0">
              <dt className="text-muted-foreground">Email</dt>
              <dd className="truncate py-1.5">{me.data.email ?? "None on file"}</dd>
            </div>
            {name ? (
              <div className="min-w-0">
                <dt className="text-muted-foreground">Name</dt>
                <dd className="truncate py-1.5">{name}</dd>
              </div>
            ) : null}
            <div>
              <dt className="text-muted-foreground">Plan</dt>
              <dd className="flex items-center gap-2 py-1.5">
                {plan ? (
                  <>
                    {plan.name} {plan.subscribed ? <Badge variant={plan.tone}>{plan.label}</Badge> : null}
                  </>
                ) : plans.isError ? (
                  "Not available right now"
                ) : (
                  <Skeleton className="h-5 w-24" />
                )}
              </dd>
            </div>
          </dl>
        )}
      </CardContent>
    </Card>
  );
}

export function Account() {
  const deletion = useDeletion();
  const [justRequested, setJustRequested] = useState(false);
  const erasing = Boolean(deletion.data);
  // Once erased there is nothing left to show but that (and the sign-out that follows).
  const erased = deletion.data?.status === "completed";

  return (
    <>
      <PageHeader title="Account" description="Who you are to Visiona, a copy of your data, and deleting it all." />
      {deletion.data ? <DeletionProgress deletion={deletion.data} focusOnMount={justRequested} /> : null}
      {deletion.isError ? (
        <div className="mb-6">
          <ProblemNotice error={deletion.error} onRetry={() => void deletion.refetch()} />
        </div>
      ) : null}
      {erased ? null : (
        <>
          <div className="grid gap-4 lg:grid-cols-2">
            <Profile />
            <ExportCard erasing={erasing} />
          </div>

          <section aria-labelledby="audit-title" className="mt-10">
            <h2 id="audit-title" className="mb-1 text-lg font-semibold">
              Account history
            </h2>
            <p className="mb-4 text-sm text-muted-foreground">Security-relevant actions on your account, newest first.</p>
            <AuditTrail />
          </section>

          {deletion.isSuccess && !deletion.data ? (
            <section aria-label="Danger zone" className="mt-10">
              <DangerZone onRequested={() => setJustRequested(true)} />
            </section>
          ) : null}
        </>
      )}
    </>
  );
}

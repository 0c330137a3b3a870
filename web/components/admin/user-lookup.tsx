"use client";

import { Boxes, EyeOff, Images, Receipt, Search } from "lucide-react";
import { useSearchParams } from "next/navigation";
import { useId, useState, type FormEvent, type ReactNode } from "react";

import { reasonProblem, REASON_MAX, userIdProblem } from "@/components/admin/admin-words";
import { CreditDialog } from "@/components/admin/credit-dialog";
import { JobList } from "@/components/admin/job-list";
import { useUserList, useUserLookup, type Subject } from "@/components/admin/use-admin";
import { EmptyState } from "@/components/app/empty-state";
import { QueryView } from "@/components/app/query-view";
import { Ledger } from "@/components/billing/ledger";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { Skeleton } from "@/components/ui/skeleton";
import type { Schemas } from "@/lib/api/client";

/** The user id and the reason: both checked in words before anything is asked. */
function LookupForm({ initialUserId, onLookUp }: { initialUserId: string; onLookUp: (subject: Subject) => void }) {
  const [userId, setUserId] = useState(initialUserId);
  const [reason, setReason] = useState("");
  const [checked, setChecked] = useState(false);
  const id = useId();
  const idProblem = userIdProblem(userId);
  const whyProblem = reasonProblem(reason);

  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    setChecked(true);
    if (idProblem || whyProblem) return;
    onLookUp({ userId: userId.trim(), reason: reason.trim() });
  };

  return (
    <form onSubmit={submit} noValidate className="grid gap-4 sm:grid-cols-[minmax(0,1fr)_minmax(0,1.4fr)_auto] sm:items-start">
      <div className="flex flex-col gap-2">
        <Label htmlFor={`${id}-user`}>User id</Label>
        <Input
          id={`${id}-user`}
          name="user"
          value={userId}
          onChange={(event) => setUserId(event.target.value)}
          placeholder="user_2abc…"
          autoComplete="off"
          spellCheck={false}
          aria-invalid={checked && idProblem ? true : undefined}
          aria-describedby={checked && idProblem ? `${id}-user-problem` : undefined}
        />
        {checked && idProblem ? (
          <p id={`${id}-user-problem`} className="text-sm text-destructive">
            {idProblem}
          </p>
        ) : null}
      </div>
      <div className="flex flex-col gap-2">
        <Label htmlFor={`${id}-reason`}>Reason</Label>
        <Input
          id={`${id}-reason`}
          name="reason"
          value={reason}
          maxLength={REASON_MAX + 50}
          onChange={(event) => setReason(event.target.value)}
          placeholder="Ticket 1234: asks about a refund"
          autoComplete="off"
          aria-invalid={checked && whyProblem ? true : undefined}
          aria-describedby={`${id}-reason-hint`}
        />
        <p id={`${id}-reason-hint`} className={checked && whyProblem ? "text-sm text-destructive" : "text-sm text-muted-foreground"}>
          {checked && whyProblem ? whyProblem : "Required: looking is recorded in the user's own account history."}
        </p>
      </div>
      <Button type="submit" className="sm:mt-6">
        <Search aria-hidden /> Look up
      </Button>
    </form>
  );
}

function Figure({ label, value, testId }: { label: string; value: number; testId: string }) {
  return (
    <div className="flex flex-col gap-1">
      <dt className="text-sm text-muted-foreground">{label}</dt>
      <dd className="text-2xl font-semibold tabular-nums" data-testid={testId}>
        {new Intl.NumberFormat("en").format(value)}
      </dd>
    </div>
  );
}

function Credits({ userId, credits }: { userId: string; credits: Schemas["Balance"] }) {
  return (
    <Card>
      <CardHeader>
        <CardTitle>Credits</CardTitle>
        <CardDescription>Held credits are reserved by running jobs; available is what a new job, or a claw-back, may use.</CardDescription>
      </CardHeader>
      <CardContent className="flex flex-col gap-5">
        <dl className="grid grid-cols-3 gap-4">
          <Figure label="Balance" value={credits.balance} testId="lookup-balance" />
          <Figure label="Held" value={credits.held} testId="lookup-held" />
          <Figure label="Available" value={credits.available} testId="lookup-available" />
        </dl>
        <div className="flex flex-wrap gap-2">
          <CreditDialog userId={userId} change="grant" credits={credits} />
          <CreditDialog userId={userId} change="clawback" credits={credits} />
        </div>
      </CardContent>
    </Card>
  );
}

function ListSection({ title, description, children }: { title: string; description: string; children: ReactNode }) {
  return (
    <section className="flex flex-col gap-3" aria-label={title}>
      <div>
        <h3 className="font-semibold">{title}</h3>
        <p className="text-sm text-muted-foreground">{description}</p>
      </div>
      {children}
    </section>
  );
}

/** What an operator may see of one user: credits and their movements, their jobs' states. */
function UserAccount({ subject }: { subject: Subject }) {
  const lookup = useUserLookup(subject);
  const ledger = useUserList(subject, "ledger");
  const models = useUserList(subject, "models");
  const generations = useUserList(subject, "generations");
  const who = subject.userId;

  return (
    <QueryView query={lookup} loading={<Skeleton className="h-48" />}>
      {(found) => (
        <div className="flex flex-col gap-8" data-testid="user-lookup" data-user-id={found.user_id}>
          <div className="flex flex-col gap-3">
            <h3 className="font-mono text-lg font-semibold break-all">{found.user_id}</h3>
            <Credits userId={found.user_id} credits={found.credits} />
          </div>
          <ListSection title="Credit history" description="Payments, plan credits, what jobs held and spent, and corrections by support; newest first.">
            <Ledger
              query={ledger}
              label={`Credit history of ${who}, newest first`}
              loadingLabel={`Loading the credit history of ${who}`}
              empty={
                <EmptyState icon={Receipt} title="No credit movements">
                  This user has never bought, been granted or spent credits.
                </EmptyState>
              }
            />
          </ListSection>
          <ListSection title="Models" description="Their trainings, newest first.">
            <JobList query={models} label={`Models of ${who}`} empty={<EmptyState icon={Boxes} title="No models" />} />
          </ListSection>
          <ListSection title="Generations" description="Newest first.">
            <JobList query={generations} label={`Generations of ${who}`} empty={<EmptyState icon={Images} title="No generations" />} />
          </ListSection>
        </div>
      )}
    </QueryView>
  );
}

/** Look a user up (with a reason), then grant or take back credits. */
export function UserLookup() {
  const params = useSearchParams();
  const [subject, setSubject] = useState<Subject | null>(null);
  return (
    <section aria-labelledby="users-title" className="flex flex-col gap-6">
      <div>
        <h2 id="users-title" className="text-lg font-semibold">
          Users
        </h2>
        <p className="text-sm text-muted-foreground">A user&apos;s credits and the states of their models and generations.</p>
      </div>
      <LookupForm initialUserId={params.get("user") ?? ""} onLookUp={setSubject} />
      <p className="flex items-start gap-2 rounded-lg border bg-card p-3 text-sm text-muted-foreground">
        <EyeOff aria-hidden className="mt-0.5 size-4 shrink-0 text-accent" />
        Photos, images and prompts are never shown here: Visiona has no record of a user&apos;s consent to show them to support.
      </p>
      {subject ? <UserAccount key={`${subject.userId}\n${subject.reason}`} subject={subject} /> : null}
    </section>
  );
}

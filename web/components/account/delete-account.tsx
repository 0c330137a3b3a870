"use client";

import { useMutation, useQueryClient } from "@tanstack/react-query";
import { AlertTriangle, ShieldCheck, Trash2 } from "lucide-react";
import { useEffect, useId, useRef } from "react";

import { confirmsDeletion, DELETE_PHRASE, phraseHint } from "@/components/account/delete-confirmation";
import { deletionView } from "@/components/account/deletion-status";
import { ConfirmActionDialog, type TypedConfirmation } from "@/components/app/confirm-action-dialog";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { Progress } from "@/components/ui/progress";
import { dataOf, useApi, type Schemas } from "@/lib/api/client";
import { useSession } from "@/lib/auth/session";
import { formatDate } from "@/lib/format";

/** How long "Deleted" stays on screen before signing out. */
const SIGN_OUT_AFTER_MS = 3_000;

/** What goes and what stays (ADR 0008 and DELETE /v1/me), said plainly. */
export function WhatIsDeleted() {
  return (
    <div className="flex flex-col gap-3 text-sm">
      <div>
        <p className="font-semibold text-foreground">Deleted, for good:</p>
        <ul className="mt-1 list-disc space-y-1 pl-5 text-foreground/90">
          <li>your photos, from our storage;</li>
          <li>your models, from our storage and at our training provider (Replicate);</li>
          <li>every image you generated, and your prompts;</li>
          <li>your credits and their history (unused credits are lost) and your subscription, which is canceled; your customer record at Stripe is deleted;</li>
          <li>your data exports, your account history, and your sign-in.</li>
        </ul>
      </div>
      <div>
        <p className="font-semibold text-foreground">Kept, because the law requires it:</p>
        <p className="mt-1 text-foreground/90">
          a record of each payment (amount, currency, date and Stripe&apos;s payment or invoice number) with nothing that says it was yours. Stripe keeps its own records of your payments, as the law requires of it. Copies of generated images at our image provider expire on their own within an hour of being made.
        </p>
      </div>
    </div>
  );
}

/** The field the phrase is typed in, with a live hint. */
function PhraseField({ typed, onType, disabled }: { typed: string; onType: (typed: string) => void; disabled: boolean }) {
  const inputId = useId();
  const hintId = useId();
  return (
    <div className="flex flex-col gap-2">
      <Label htmlFor={inputId}>
        Type <span className="font-mono font-semibold">{DELETE_PHRASE}</span> to confirm
      </Label>
      <Input
        id={inputId}
        value={typed}
        onChange={(event) => onType(event.target.value)}
        autoComplete="off"
        autoCapitalize="off"
        autoCorrect="off"
        spellCheck={false}
        aria-describedby={hintId}
        aria-invalid={typed.trim() !== "" && !confirmsDeletion(typed) && !DELETE_PHRASE.startsWith(typed.trim().toLowerCase()) ? true : undefined}
        disabled={disabled}
      />
      <p id={hintId} className="text-sm text-muted-foreground" aria-live="polite">
        {phraseHint(typed)}
      </p>
    </div>
  );
}

const DELETE_CONFIRMATION: TypedConfirmation = { Field: PhraseField, matches: confirmsDeletion };

/** The danger zone: delete the account, after typing the phrase. */
export function DangerZone({ onRequested }: { onRequested: () => void }) {
  const api = useApi();
  const queryClient = useQueryClient();

  const erase = useMutation({
    mutationFn: async () => dataOf(await api.DELETE("/v1/me")),
    onSuccess: (deletion) => {
      queryClient.setQueryData(["deletion"], deletion);
      void queryClient.invalidateQueries({ queryKey: ["audit"] });
      onRequested();
    },
  });

  return (
    <Card className="border-destructive/60">
      <CardHeader>
        <CardTitle className="flex items-center gap-2">
          <AlertTriangle aria-hidden className="size-5 text-destructive" /> Delete my account
        </CardTitle>
        <CardDescription>Erase your account and everything in it: photos, models, images, credits. This cannot be undone. Export your data first if you want a copy.</CardDescription>
      </CardHeader>
      <CardContent>
        <ConfirmActionDialog
          trigger={
            <Button variant="destructive">
              <Trash2 aria-hidden /> Delete my account…
            </Button>
          }
          title="Delete your account and all its data?"
          details={<WhatIsDeleted />}
          typedConfirmation={DELETE_CONFIRMATION}
          confirmLabel="Delete my account"
          confirmIcon={<Trash2 aria-hidden />}
          pendingLabel="Deleting…"
          cancelLabel="Keep my account"
          onConfirm={() => erase.mutateAsync()}
        >
          <p>
            This cannot be undone. It starts once anything still running has finished (this can take up to about a quarter of an hour) and then takes a few minutes. Nothing new can be started meanwhile. When it is done you are signed out.
          </p>
        </ConfirmActionDialog>
      </CardContent>
    </Card>
  );
}

/** The erasure under way: its progress, then signing out once nothing is left. */
export function DeletionProgress({ deletion, focusOnMount = false }: { deletion: Schemas["Deletion"]; focusOnMount?: boolean }) {
  const { signOut } = useSession();
  const view = deletionView(deletion);
  const heading = useRef<HTMLHeadingElement>(null);

  // Just asked for: the dialog closed, so focus goes to what happens next.
  useEffect(() => {
    if (focusOnMount) heading.current?.focus();
  }, [focusOnMount]);

  const queryClient = useQueryClient();
  useEffect(() => {
    if (!view.done) return;
    // Nothing of the account is left: what the header still shows (the balance) is stale.
    void queryClient.invalidateQueries({ queryKey: ["balance"] });
    const timer = setTimeout(() => void signOut(), SIGN_OUT_AFTER_MS);
    return () => clearTimeout(timer);
  }, [view.done, signOut, queryClient]);

  return (
    <Card className="mb-6 border-destructive/60" data-deletion-status={deletion.status}>
      <CardHeader>
        <h2 ref={heading} tabIndex={-1} className="flex items-center gap-2 leading-none font-semibold outline-none">
          {view.done ? <ShieldCheck aria-hidden className="size-5 text-success" /> : <Trash2 aria-hidden className="size-5 text-destructive" />}
          {view.done ? "Your account has been deleted" : "Your account is being deleted"}
        </h2>
        <CardDescription>
          {view.done
            ? `Asked for ${formatDate(deletion.requested_at)}, finished ${formatDate(deletion.completed_at)}.`
            : `Asked for ${formatDate(deletion.requested_at)}. You can close this page: the deletion goes on without it.`}
        </CardDescription>
      </CardHeader>
      <CardContent className="flex flex-col gap-3" aria-live="polite">
        <div className="flex items-center justify-between gap-3 text-sm">
          <span className="font-semibold">{view.label}</span>
          <span className="text-muted-foreground tabular-nums">{view.progress}%</span>
        </div>
        <Progress value={view.progress} aria-label={`Deletion progress: ${view.label}`} />
        <p className="text-sm">{view.description}</p>
        {view.done ? (
          <Button variant="outline" className="self-start" onClick={() => void signOut()}>
            Sign out now
          </Button>
        ) : null}
      </CardContent>
    </Card>
  );
}

"use client";

import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Loader2, MinusCircle, PlusCircle } from "lucide-react";
import { useId, useState, type FormEvent } from "react";
import { toast } from "react-toastify";

import { parseAmount, reasonProblem, REASON_MAX } from "@/components/admin/admin-words";
import { useOnce, userKey } from "@/components/admin/use-admin";
import { ProblemNotice } from "@/components/app/problem-notice";
import { Button } from "@/components/ui/button";
import { Dialog, DialogContent, DialogDescription, DialogFooter, DialogHeader, DialogTitle, DialogTrigger } from "@/components/ui/dialog";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { Textarea } from "@/components/ui/textarea";
import { dataOf, useApi, type Schemas } from "@/lib/api/client";
import { formatCredits } from "@/lib/format";

export type CreditChange = "grant" | "clawback";

const WORDS = {
  grant: {
    trigger: "Grant credits",
    title: "Grant credits",
    icon: PlusCircle,
    verb: "Grant",
    pending: "Granting…",
    done: "Granted",
    to: "to",
    what: "They are added to the balance as a correction by support, which the user sees in their credit history.",
  },
  clawback: {
    trigger: "Claw back credits",
    title: "Claw back credits",
    icon: MinusCircle,
    verb: "Take back",
    pending: "Taking back…",
    done: "Took back",
    to: "from",
    what: "They are taken from the balance as a correction by support. Never more than the user has available: credits held by running jobs stay.",
  },
} as const;

function useCreditChange(userId: string, change: CreditChange) {
  const api = useApi();
  const queryClient = useQueryClient();
  const once = useOnce();
  return useMutation({
    mutationFn: ({ amount, reason }: { amount: number; reason: string }) =>
      once(`${change}:${userId}:${amount}:${reason}`, async (key) => {
        const params = { path: { user_id: userId }, header: { "Idempotency-Key": key } };
        const body = { amount, reason };
        return dataOf(
          change === "grant"
            ? await api.POST("/v1/admin/users/{user_id}/credits/grant", { params, body })
            : await api.POST("/v1/admin/users/{user_id}/credits/clawback", { params, body }),
        );
      }),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: userKey(userId) }),
    // The refusal of a claw-back past the balance is told in the dialog, in words.
    meta: { audience: "operator", inPlace: ["insufficient_credits", "reason_required"] },
  });
}

/** Grant or take back credits by hand: an amount and a reason, both checked before sending. */
export function CreditDialog({ userId, change, credits }: { userId: string; change: CreditChange; credits: Schemas["Balance"] }) {
  const words = WORDS[change];
  const mutation = useCreditChange(userId, change);
  const [open, setOpen] = useState(false);
  const [amount, setAmount] = useState("");
  const [reason, setReason] = useState("");
  const [checked, setChecked] = useState(false);
  const id = useId();

  const parsed = parseAmount(amount);
  const amountProblem = "problem" in parsed ? parsed.problem : null;
  const whyProblem = reasonProblem(reason);

  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    setChecked(true);
    if ("problem" in parsed || whyProblem || mutation.isPending) return;
    mutation.mutate(
      { amount: parsed.amount, reason: reason.trim() },
      {
        onSuccess: (result) => {
          setOpen(false);
          const now = `Balance now ${formatCredits(result.balance)} (${new Intl.NumberFormat("en").format(result.available)} available).`;
          if (result.applied) toast.success(`${words.done} ${formatCredits(parsed.amount)} ${words.to} ${userId}. ${now}`, { toastId: `credits-${userId}` });
          else toast.info(`That change was already made; nothing more was applied. ${now}`, { toastId: `credits-${userId}` });
        },
      },
    );
  };

  const Icon = words.icon;
  return (
    <Dialog
      open={open}
      onOpenChange={(next) => {
        if (mutation.isPending) return;
        setOpen(next);
        if (next) {
          setAmount("");
          setReason("");
          setChecked(false);
          mutation.reset();
        }
      }}
    >
      <DialogTrigger asChild>
        <Button variant={change === "grant" ? "default" : "outline"}>
          <Icon aria-hidden /> {words.trigger}
        </Button>
      </DialogTrigger>
      <DialogContent>
        <form onSubmit={submit} noValidate className="flex flex-col gap-4">
          <DialogHeader>
            <DialogTitle>{words.title}</DialogTitle>
            <DialogDescription>
              <span className="font-mono">{userId}</span> has {formatCredits(credits.balance)}, {new Intl.NumberFormat("en").format(credits.available)} available. {words.what}
            </DialogDescription>
          </DialogHeader>
          <div className="flex flex-col gap-2">
            <Label htmlFor={`${id}-amount`}>Credits</Label>
            <Input
              id={`${id}-amount`}
              name="amount"
              inputMode="numeric"
              autoComplete="off"
              value={amount}
              onChange={(event) => setAmount(event.target.value)}
              aria-invalid={checked && amountProblem ? true : undefined}
              aria-describedby={checked && amountProblem ? `${id}-amount-problem` : undefined}
              autoFocus
            />
            {checked && amountProblem ? (
              <p id={`${id}-amount-problem`} className="text-sm text-destructive">
                {amountProblem}
              </p>
            ) : null}
          </div>
          <div className="flex flex-col gap-2">
            <Label htmlFor={`${id}-reason`}>Reason</Label>
            <Textarea
              id={`${id}-reason`}
              name="reason"
              rows={2}
              maxLength={REASON_MAX + 50}
              placeholder="Ticket 1234: refund for a failed training"
              value={reason}
              onChange={(event) => setReason(event.target.value)}
              aria-invalid={checked && whyProblem ? true : undefined}
              aria-describedby={`${id}-reason-hint`}
            />
            <p id={`${id}-reason-hint`} className={checked && whyProblem ? "text-sm text-destructive" : "text-sm text-muted-foreground"}>
              {checked && whyProblem ? whyProblem : "Required. The user reads it in their credit history."}
            </p>
          </div>
          {mutation.isError ? <ProblemNotice error={mutation.error} /> : null}
          <DialogFooter>
            <Button type="button" variant="outline" onClick={() => setOpen(false)} disabled={mutation.isPending}>
              Cancel
            </Button>
            <Button type="submit" variant={change === "grant" ? "default" : "destructive"} disabled={mutation.isPending}>
              {mutation.isPending ? <Loader2 aria-hidden className="animate-spin motion-reduce:animate-none" /> : <Icon aria-hidden />}
              {mutation.isPending ? words.pending : "amount" in parsed ? `${words.verb} ${formatCredits(parsed.amount)}` : `${words.verb} credits`}
            </Button>
          </DialogFooter>
        </form>
      </DialogContent>
    </Dialog>
  );
}

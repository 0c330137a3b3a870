"use client";

import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Ban, RotateCw } from "lucide-react";
import { toast } from "react-toastify";

import { stepWords } from "@/components/admin/admin-words";
import { REASON_CONFIRMATION } from "@/components/admin/reason-field";
import { ADMIN_KEY, useOnce, type AdminJob } from "@/components/admin/use-admin";
import { ConfirmActionDialog } from "@/components/app/confirm-action-dialog";
import { Button } from "@/components/ui/button";
import { dataOf, useApi } from "@/lib/api/client";

/** Outcomes the dialog explains in place (no toast for them too). */
const IN_PLACE = ["job_finished", "job_not_found", "reason_required"] as const;
const NOUN = { training: "training", generation: "generation" } as const;

function useJobMutation(job: AdminJob, action: "retry" | "fail") {
  const api = useApi();
  const queryClient = useQueryClient();
  const once = useOnce();
  return useMutation({
    mutationFn: (reason: string) =>
      once(`${action}:${job.kind}:${job.id}:${reason}`, async (key) => {
        const params = { path: { kind: job.kind, job_id: job.id }, header: { "Idempotency-Key": key } };
        const body = { reason: reason.trim() };
        return action === "retry"
          ? { job: dataOf(await api.POST("/v1/admin/jobs/{kind}/{job_id}/retry", { params, body })), failed: false }
          : dataOf(await api.POST("/v1/admin/jobs/{kind}/{job_id}/fail", { params, body }));
      }),
    onSettled: () => void queryClient.invalidateQueries({ queryKey: ADMIN_KEY }),
    meta: { audience: "operator", inPlace: IN_PLACE },
  });
}

/** Put a job back to work: its next step due now, its attempts counted afresh. */
export function RetryJob({ job }: { job: AdminJob }) {
  const retry = useJobMutation(job, "retry");
  const step = stepWords(job.work);
  return (
    <ConfirmActionDialog
      trigger={
        <Button variant="outline" size="sm" aria-label={`Retry ${NOUN[job.kind]} ${job.id}`}>
          <RotateCw aria-hidden /> Retry
        </Button>
      }
      title={`Retry this ${NOUN[job.kind]}?`}
      typedConfirmation={REASON_CONFIRMATION}
      confirmVariant="default"
      confirmLabel="Retry now"
      confirmIcon={<RotateCw aria-hidden />}
      pendingLabel="Retrying…"
      cancelLabel="Cancel"
      onConfirm={async (reason) => {
        const { job: after } = await retry.mutateAsync(reason);
        toast.success(`Retried: ${(stepWords(after.work) ?? "its next step").toLowerCase()} runs now.`, { toastId: `retry-${job.id}` });
      }}
    >
      <p>
        {step ? `Its next step (${step.toLowerCase()}) runs now` : "It is given the step that moves it on, due now"}, with its attempts counted afresh. Nothing is charged again.
      </p>
      <p className="font-mono text-xs break-all">{job.id}</p>
    </ConfirmActionDialog>
  );
}

/** End a job as failed: the user reads "stopped by support", billing releases what it held. */
export function FailJob({ job }: { job: AdminJob }) {
  const fail = useJobMutation(job, "fail");
  return (
    <ConfirmActionDialog
      trigger={
        <Button variant="outline" size="sm" className="text-destructive" aria-label={`Fail ${NOUN[job.kind]} ${job.id}`}>
          <Ban aria-hidden /> Fail
        </Button>
      }
      title={`Fail this ${NOUN[job.kind]}?`}
      typedConfirmation={REASON_CONFIRMATION}
      confirmLabel={`Fail ${NOUN[job.kind]}`}
      confirmIcon={<Ban aria-hidden />}
      pendingLabel="Failing…"
      cancelLabel="Keep it running"
      onConfirm={async (reason) => {
        const outcome = await fail.mutateAsync(reason);
        if (outcome.failed) toast.success("Failed. The credits it held are being released to the user.", { toastId: `fail-${job.id}` });
        else toast.info("That job had already ended: nothing changed and nothing was released.", { toastId: `fail-${job.id}` });
      }}
    >
      <p>
        It ends as failed and cannot be resumed. The user reads that it was stopped by support, and <strong className="text-foreground">the credits it holds are released</strong> back to them.
      </p>
      <p className="font-mono text-xs break-all">{job.id}</p>
    </ConfirmActionDialog>
  );
}

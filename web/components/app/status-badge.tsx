import { Badge } from "@/components/ui/badge";

type Variant = "default" | "secondary" | "success" | "warning" | "destructive" | "info" | "outline";

type Labels = Record<string, [string, Variant]>;

/** What a paid job (a model's training, a generation) says the same way in both. */
const PAID_JOB: Labels = {
  awaiting_credits: ["Waiting for credits", "warning"],
  queued: ["Queued", "info"],
  failed: ["Failed", "destructive"],
  canceled: ["Canceled", "secondary"],
};

const MODEL: Labels = { ...PAID_JOB, preparing: ["Preparing", "info"], training: ["Training", "info"], succeeded: ["Ready", "success"], unavailable: ["Unavailable", "warning"] };

const GENERATION: Labels = { ...PAID_JOB, running: ["Creating", "info"], succeeded: ["Done", "success"] };

const PHOTO: Labels = {
  uploading: ["Uploading", "info"],
  accepted: ["Accepted", "success"],
  accepted_with_warnings: ["Accepted, with notes", "warning"],
  rejected: ["Rejected", "destructive"],
};

const KINDS = { model: MODEL, generation: GENERATION, photo: PHOTO };

export function StatusBadge({ kind, status }: { kind: keyof typeof KINDS; status: string }) {
  const [label, variant] = KINDS[kind][status] ?? [status, "outline" as Variant];
  return <Badge variant={variant}>{label}</Badge>;
}

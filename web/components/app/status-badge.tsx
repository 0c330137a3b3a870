import { Badge } from "@/components/ui/badge";

type Variant = "default" | "secondary" | "success" | "warning" | "destructive" | "info" | "outline";

const MODEL: Record<string, [string, Variant]> = {
  awaiting_credits: ["Waiting for credits", "warning"],
  preparing: ["Preparing", "info"],
  queued: ["Queued", "info"],
  training: ["Training", "info"],
  succeeded: ["Ready", "success"],
  failed: ["Failed", "destructive"],
  canceled: ["Canceled", "secondary"],
  unavailable: ["Unavailable", "warning"],
};

const GENERATION: Record<string, [string, Variant]> = {
  awaiting_credits: ["Waiting for credits", "warning"],
  queued: ["Queued", "info"],
  running: ["Creating", "info"],
  succeeded: ["Done", "success"],
  failed: ["Failed", "destructive"],
  canceled: ["Canceled", "secondary"],
};

const PHOTO: Record<string, [string, Variant]> = {
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

/**
 * An export's state in words, and how far along it is. Pure, unit-tested.
 *
 * `collecting`: each service with user data writes its part (the gateway lists the parts that
 * are in); `assembling`: the parts are zipped; `ready`: a download link can be asked for (each
 * link works 15 minutes; the archive is kept until `expires_at`); `failed`; `expired`.
 */

export type ExportLike = {
  status: string;
  parts: readonly string[];
  bytes: number | null;
  error: string | null;
  expires_at: string | null;
};

/** The services that write a part of every export (gateway/account/export.py's participants). */
export const EXPORT_PARTS = ["billing", "generation", "prompts", "training"] as const;

export const PART_WORDS: Record<string, string> = {
  billing: "payments and credits",
  generation: "images",
  prompts: "prompts",
  training: "photos and models",
};

export type ExportView = {
  label: string;
  description: string;
  tone: "info" | "success" | "destructive" | "secondary";
  /** 0–100 while in progress; null when it is over. */
  progress: number | null;
  inProgress: boolean;
};

export function partWords(part: string): string {
  return PART_WORDS[part] ?? part.replace(/_/g, " ");
}

export function listWords(items: readonly string[]): string {
  if (items.length === 0) return "";
  if (items.length === 1) return items[0]!;
  return `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
}

export function formatBytes(bytes: number | null): string {
  if (bytes === null || bytes < 0) return "";
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value >= 10 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

export function exportView(exp: ExportLike, now: number = Date.now()): ExportView {
  const known = EXPORT_PARTS.filter((part) => exp.parts.includes(part));
  switch (exp.status) {
    case "collecting": {
      const missing = EXPORT_PARTS.filter((part) => !exp.parts.includes(part)).map(partWords);
      return {
        label: "Collecting",
        description: missing.length
          ? `Gathering your ${listWords(missing)}${known.length ? ` (${known.length} of ${EXPORT_PARTS.length} parts in)` : ""}.`
          : "Every part is in; packing them next.",
        tone: "info",
        // Never 0 (it has started) nor 100 (the zip is still to be made).
        progress: 5 + Math.round((known.length / EXPORT_PARTS.length) * 80),
        inProgress: true,
      };
    }
    case "assembling":
      return { label: "Packing", description: "Putting everything into one zip file.", tone: "info", progress: 90, inProgress: true };
    case "ready": {
      const expired = exp.expires_at !== null && Date.parse(exp.expires_at) <= now;
      if (expired) return expiredView();
      const size = formatBytes(exp.bytes);
      return {
        label: "Ready",
        description: `Your data${size ? ` (${size})` : ""} is ready to download.`,
        tone: "success",
        progress: null,
        inProgress: false,
      };
    }
    case "failed":
      return {
        label: "Failed",
        description: "This export could not be completed. Nothing is wrong with your data: start a new export.",
        tone: "destructive",
        progress: null,
        inProgress: false,
      };
    case "expired":
      return expiredView();
    default:
      return { label: exp.status, description: "", tone: "secondary", progress: null, inProgress: false };
  }
}

function expiredView(): ExportView {
  return {
    label: "Expired",
    description: "This archive is no longer kept. Start a new export to get your data again.",
    tone: "secondary",
    progress: null,
    inProgress: false,
  };
}

/** Is any export of the list still being prepared? (Then the list is re-read until it is not.) */
export function anyInProgress(exports: readonly ExportLike[]): boolean {
  return exports.some((exp) => exp.status === "collecting" || exp.status === "assembling");
}

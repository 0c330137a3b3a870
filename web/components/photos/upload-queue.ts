/**
 * The upload queue of the Photos page as a pure state machine (no React, no I/O), so every
 * transition is unit-tested. One item per chosen file:
 *
 *   refused                       (never sent: wrong type, empty, larger than the limit)
 *   queued → uploading(progress) → completing → verdict
 *            ↘ failed(reason) ↙  ↘ failed(reason)
 *   failed → retry → queued (→ completing at once when the bytes already reached storage)
 *
 * The hook in use-upload-queue.ts runs the I/O: it asks `nextToStart` which items may start
 * (at most MAX_CONCURRENT in flight) and reports each step back as an action.
 */

import type { Schemas } from "@/lib/api/client";

export const ACCEPTED_TYPES = ["image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"] as const;
export type AcceptedType = (typeof ACCEPTED_TYPES)[number];

/** The file input's `accept`: the types, and the extensions for systems that give no type (HEIC). */
export const ACCEPT_ATTRIBUTE = [...ACCEPTED_TYPES, ".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif"].join(",");

/** The gateway's limit until a slot tells us its own (`max_bytes`): 20 MiB. */
export const DEFAULT_MAX_BYTES = 20 * 1024 * 1024;
/** Uploads (and validations) in flight at once. */
export const MAX_CONCURRENT = 3;
/** A slot whose policy expires sooner than this is not used: a fresh one is asked for. */
export const SLOT_MARGIN_MS = 60_000;

const BY_EXTENSION: Record<string, AcceptedType> = {
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  jfif: "image/jpeg",
  png: "image/png",
  webp: "image/webp",
  heic: "image/heic",
  heif: "image/heif",
};

/** The content type to declare for a file: its own when accepted, else from its extension when
 *  the browser gave none (HEIC on many systems); null when the file is not one we take. */
export function contentTypeOf(name: string, type: string): AcceptedType | null {
  const declared = type.toLowerCase();
  if ((ACCEPTED_TYPES as readonly string[]).includes(declared)) return declared as AcceptedType;
  if (declared === "image/jpg" || declared === "image/pjpeg") return "image/jpeg";
  if (declared && declared !== "application/octet-stream") return null;
  const extension = name.toLowerCase().split(".").pop() ?? "";
  return BY_EXTENSION[extension] ?? null;
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(bytes >= 10 * 1024 * 1024 ? 0 : 1)} MB`;
  if (bytes >= 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${bytes} bytes`;
}

const ACCEPTED_WORDS = "Use JPEG, PNG, WebP or HEIC photos.";

/** Why a file is refused before it is sent, in words; null when it may go. */
export function refusalOf(file: { name: string; size: number; type: string }, maxBytes: number): string | null {
  if (contentTypeOf(file.name, file.type) === null) {
    if (file.type.startsWith("image/")) return `${file.type.slice(6).toUpperCase()} images are not accepted. ${ACCEPTED_WORDS}`;
    const extension = file.name.includes(".") ? file.name.split(".").pop()?.toLowerCase() : undefined;
    return `${extension ? `A .${extension} file` : "This file"} is not a photo we accept. ${ACCEPTED_WORDS}`;
  }
  if (file.size === 0) return "This file is empty. Choose the photo again.";
  if (file.size > maxBytes) return `This photo is ${formatBytes(file.size)}; the limit is ${formatBytes(maxBytes)}. Export it smaller and try again.`;
  return null;
}

export type Slot = {
  photoId: string;
  url: string;
  fields: Record<string, string>;
  expiresAt: string;
  maxBytes: number;
};

export function slotOf(upload: Schemas["PhotoUpload"]): Slot {
  return { photoId: upload.photo_id, url: upload.url, fields: upload.fields, expiresAt: upload.expires_at, maxBytes: upload.max_bytes };
}

export type FailReason =
  | "network" // no answer at all (offline, DNS, CORS)
  | "stalled" // no progress for too long: aborted
  | "timeout" // the validation took too long
  | "storage" // storage answered with an error
  | "expired" // the upload policy expired: a new slot is needed
  | "api"; // the gateway answered with a problem

export type Failure = {
  reason: FailReason;
  /** What a person reads. */
  message: string;
  /** The gateway's or storage's code, for support. */
  code?: string;
};

export type Phase =
  | { kind: "refused"; message: string }
  | { kind: "queued" }
  | { kind: "uploading"; loaded: number; total: number }
  | { kind: "completing" }
  | { kind: "verdict"; photo: Schemas["Photo"] }
  | { kind: "failed"; failure: Failure };

export type UploadItem = {
  /** Local id (not the photo's: that comes with the slot). */
  key: string;
  name: string;
  size: number;
  contentType: AcceptedType | null;
  previewUrl: string | null;
  phase: Phase;
  slot: Slot | null;
  /** The bytes reached storage under `slot`: a retry only asks for the verdict again. */
  uploaded: boolean;
  attempts: number;
};

export type QueueState = { items: UploadItem[]; maxBytes: number };

export const initialQueue: QueueState = { items: [], maxBytes: DEFAULT_MAX_BYTES };

export type NewFile = { key: string; name: string; size: number; type: string; previewUrl: string | null };

export type QueueAction =
  | { type: "add"; files: NewFile[] }
  | { type: "start"; key: string }
  | { type: "slot"; key: string; slot: Slot }
  | { type: "progress"; key: string; loaded: number; total: number }
  | { type: "uploaded"; key: string }
  | { type: "verdict"; key: string; photo: Schemas["Photo"] }
  | { type: "fail"; key: string; failure: Failure; dropSlot?: boolean; notUploaded?: boolean }
  | { type: "retry"; key: string }
  | { type: "remove"; key: string }
  | { type: "clearFinished" };

function update(state: QueueState, key: string, change: (item: UploadItem) => UploadItem): QueueState {
  let changed = false;
  const items = state.items.map((item) => {
    if (item.key !== key) return item;
    const next = change(item);
    if (next !== item) changed = true;
    return next;
  });
  return changed ? { ...state, items } : state;
}

const ACTIVE = new Set<Phase["kind"]>(["uploading", "completing"]);

export function isActive(item: UploadItem): boolean {
  return ACTIVE.has(item.phase.kind);
}

export function isFinished(item: UploadItem): boolean {
  return item.phase.kind === "verdict" || item.phase.kind === "refused";
}

export function queueReducer(state: QueueState, action: QueueAction): QueueState {
  switch (action.type) {
    case "add": {
      const added = action.files.map<UploadItem>((file) => {
        const refusal = refusalOf(file, state.maxBytes);
        return {
          key: file.key,
          name: file.name,
          size: file.size,
          contentType: contentTypeOf(file.name, file.type),
          previewUrl: refusal ? null : file.previewUrl,
          phase: refusal ? { kind: "refused", message: refusal } : { kind: "queued" },
          slot: null,
          uploaded: false,
          attempts: 0,
        };
      });
      return added.length ? { ...state, items: [...state.items, ...added] } : state;
    }
    case "start":
      return update(state, action.key, (item) =>
        item.phase.kind !== "queued"
          ? item
          : {
              ...item,
              attempts: item.attempts + 1,
              phase: item.uploaded && item.slot ? { kind: "completing" } : { kind: "uploading", loaded: 0, total: item.size },
            },
      );
    case "slot": {
      const maxBytes = action.slot.maxBytes > 0 ? action.slot.maxBytes : state.maxBytes;
      const next = update(state, action.key, (item) => {
        if (item.phase.kind !== "uploading") return item;
        if (item.size > maxBytes) {
          return { ...item, slot: null, previewUrl: null, phase: { kind: "refused", message: refusalOf({ name: item.name, size: item.size, type: item.contentType ?? "" }, maxBytes) ?? "This photo is too large." } };
        }
        return { ...item, slot: action.slot, uploaded: false };
      });
      return maxBytes === state.maxBytes ? next : { ...next, maxBytes };
    }
    case "progress":
      return update(state, action.key, (item) =>
        item.phase.kind !== "uploading" ? item : { ...item, phase: { kind: "uploading", loaded: Math.min(action.loaded, action.total), total: action.total } },
      );
    case "uploaded":
      return update(state, action.key, (item) => (item.phase.kind !== "uploading" ? item : { ...item, uploaded: true, phase: { kind: "completing" } }));
    case "verdict":
      return update(state, action.key, (item) =>
        item.phase.kind !== "completing" ? item : { ...item, phase: { kind: "verdict", photo: action.photo } },
      );
    case "fail":
      return update(state, action.key, (item) => {
        if (!isActive(item)) return item;
        const dropSlot = action.dropSlot === true;
        return {
          ...item,
          phase: { kind: "failed", failure: action.failure },
          slot: dropSlot ? null : item.slot,
          uploaded: dropSlot || action.notUploaded ? false : item.uploaded,
        };
      });
    case "retry":
      return update(state, action.key, (item) => (item.phase.kind !== "failed" ? item : { ...item, phase: { kind: "queued" } }));
    case "remove":
      return state.items.some((item) => item.key === action.key && !isActive(item))
        ? { ...state, items: state.items.filter((item) => item.key !== action.key) }
        : state;
    case "clearFinished":
      return state.items.some(isFinished) ? { ...state, items: state.items.filter((item) => !isFinished(item)) } : state;
  }
}

/** The queued items that may start now, oldest first, keeping at most `limit` in flight. */
export function nextToStart(state: QueueState, limit: number = MAX_CONCURRENT): UploadItem[] {
  const free = limit - state.items.filter(isActive).length;
  if (free <= 0) return [];
  return state.items.filter((item) => item.phase.kind === "queued").slice(0, free);
}

/** Whether a slot can still be used at `now` (with a margin for the upload itself). */
export function slotUsable(slot: Slot | null, now: number): slot is Slot {
  return slot !== null && Date.parse(slot.expiresAt) - now > SLOT_MARGIN_MS;
}

export type QueueSummary = { total: number; queued: number; active: number; accepted: number; warned: number; rejected: number; failed: number; refused: number };

export function summarize(state: QueueState): QueueSummary {
  const summary: QueueSummary = { total: state.items.length, queued: 0, active: 0, accepted: 0, warned: 0, rejected: 0, failed: 0, refused: 0 };
  for (const item of state.items) {
    const phase = item.phase;
    if (phase.kind === "queued") summary.queued += 1;
    else if (phase.kind === "uploading" || phase.kind === "completing") summary.active += 1;
    else if (phase.kind === "failed") summary.failed += 1;
    else if (phase.kind === "refused") summary.refused += 1;
    else if (phase.photo.status === "accepted") summary.accepted += 1;
    else if (phase.photo.status === "accepted_with_warnings") summary.warned += 1;
    else summary.rejected += 1;
  }
  return summary;
}

/** One line for the live region: what the queue is doing, in words. */
export function summaryText(summary: QueueSummary): string {
  if (summary.total === 0) return "";
  const parts: string[] = [];
  const pending = summary.queued + summary.active;
  if (pending) parts.push(`${pending} uploading`);
  const done = summary.accepted + summary.warned;
  if (done) parts.push(`${done} accepted`);
  if (summary.rejected) parts.push(`${summary.rejected} rejected`);
  if (summary.failed) parts.push(`${summary.failed} failed, can be retried`);
  if (summary.refused) parts.push(`${summary.refused} not sent`);
  return parts.join(" · ");
}

/** Storage's answer to a failed presigned POST, as a failure a person can act on. */
export function storageFailure(status: number, body: string): { failure: Failure; dropSlot: boolean } {
  if (status === 0) {
    return {
      failure: { reason: "network", message: "The upload could not reach storage. Check your connection and retry.", code: "network_error" },
      dropSlot: false,
    };
  }
  const code = /<Code>([^<]+)<\/Code>/.exec(body)?.[1] ?? `http_${status}`;
  const detail = /<Message>([^<]+)<\/Message>/.exec(body)?.[1] ?? "";
  if (code === "EntityTooLarge") {
    return { failure: { reason: "storage", message: "Storage refused the photo: it is larger than allowed. Export it smaller.", code }, dropSlot: true };
  }
  if (code === "AccessDenied" && /expire/i.test(detail)) {
    return { failure: { reason: "expired", message: "The upload permission expired. Retry to get a new one.", code }, dropSlot: true };
  }
  if (status >= 500 || code === "SlowDown" || code === "ServiceUnavailable") {
    return { failure: { reason: "storage", message: "Storage is busy or briefly down. Retry in a moment.", code }, dropSlot: false };
  }
  // A refused policy (signature, type, size) will not pass a second time: ask for a new slot.
  return { failure: { reason: "storage", message: `Storage refused the upload (${code}). Retry with a fresh upload permission.`, code }, dropSlot: true };
}

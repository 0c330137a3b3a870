/**
 * One file straight to storage through its presigned POST, with XMLHttpRequest (fetch has no
 * upload progress). Never hangs: a transfer with no progress for `stallMs` is aborted.
 */

import type { Slot } from "./upload-queue";

export type UploadOutcome = { ok: true } | { ok: false; status: number; body: string; stalled: boolean };

export const STALL_MS = 30_000;

export function postToStorage(
  slot: Slot,
  file: Blob,
  onProgress: (loaded: number, total: number) => void,
  options: { stallMs?: number; signal?: AbortSignal } = {},
): Promise<UploadOutcome> {
  const stallMs = options.stallMs ?? STALL_MS;
  return new Promise((resolve) => {
    const form = new FormData();
    // The policy's fields first; storage reads the file last (S3 ignores fields after it).
    for (const [name, value] of Object.entries(slot.fields)) form.append(name, value);
    form.append("file", file);

    const xhr = new XMLHttpRequest();
    let stalled = false;
    let settled = false;
    let watchdog: ReturnType<typeof setTimeout> | null = null;

    const settle = (outcome: UploadOutcome) => {
      if (settled) return;
      settled = true;
      if (watchdog) clearTimeout(watchdog);
      options.signal?.removeEventListener("abort", abort);
      resolve(outcome);
    };
    const arm = () => {
      if (watchdog) clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        stalled = true;
        xhr.abort();
      }, stallMs);
    };
    const abort = () => xhr.abort();

    xhr.upload.onprogress = (event) => {
      arm();
      onProgress(event.loaded, event.lengthComputable ? event.total : file.size);
    };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) settle({ ok: true });
      else settle({ ok: false, status: xhr.status, body: typeof xhr.responseText === "string" ? xhr.responseText : "", stalled: false });
    };
    xhr.onerror = () => settle({ ok: false, status: 0, body: "", stalled: false });
    xhr.onabort = () => settle({ ok: false, status: 0, body: "", stalled });
    xhr.ontimeout = () => settle({ ok: false, status: 0, body: "", stalled: true });

    xhr.open("POST", slot.url);
    options.signal?.addEventListener("abort", abort);
    arm();
    xhr.send(form);
  });
}

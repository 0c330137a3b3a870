/**
 * A photo's verdict in words: the gateway's stable reason codes (Photo.reasons) as sentences a
 * person can act on. Pure, so every code is unit-tested.
 */

import type { Schemas } from "@/lib/api/client";

type Photo = Pick<Schemas["Photo"], "status" | "reasons" | "faces" | "blur_score" | "width" | "height" | "require_one_face">;

export type Tone = "success" | "warning" | "destructive" | "info";

// The training service's default (TRAINING_MIN_SHORT_SIDE); the API does not expose it.
const MIN_SHORT_SIDE = 512;

/** One reason code as a sentence; face codes read differently when they only warn. */
export function reasonText(code: string, photo: Photo): string {
  const rejected = photo.status === "rejected";
  switch (code) {
    case "not_an_image":
      return "This file is not a picture we can read.";
    case "unsupported_type":
      return "This kind of image is not accepted. Use JPEG, PNG, WebP or HEIC.";
    case "truncated":
      return "The file is damaged or incomplete. Export the photo again and upload the new copy.";
    case "too_many_pixels":
      return "It has too many pixels (over 40 megapixels). Export it smaller.";
    case "too_small":
      return photo.width && photo.height
        ? `It is too small: ${photo.width} × ${photo.height} pixels. Use photos at least ${MIN_SHORT_SIDE} pixels on the short side.`
        : `It is too small. Use photos at least ${MIN_SHORT_SIDE} pixels on the short side.`;
    case "duplicate":
      return "It is the same as (or very like) a photo you already uploaded.";
    case "no_face":
      return rejected
        ? "We could not find a face. Use a photo where your face is clearly visible."
        : "We could not find a face; the model may learn less from it.";
    case "several_faces": {
      const count = photo.faces && photo.faces > 1 ? `${photo.faces} faces` : "more than one face";
      return rejected
        ? `We found ${count}. Use photos of only you, or crop the others out.`
        : `We found ${count}; the model may learn the others too.`;
    }
    case "blurry":
      return "It looks blurry or out of focus. Sharp photos train a better model.";
    case "trailing_data":
      return "The file carried extra data after the picture (phones add it for motion photos); we removed it.";
    default:
      return `Flagged: ${code.replace(/_/g, " ")}.`;
  }
}

export type Verdict = { tone: Tone; title: string; reasons: string[] };

/** The whole verdict: a headline and one sentence per reason. */
export function verdictOf(photo: Photo): Verdict {
  const reasons = photo.reasons.map((code) => reasonText(code, photo));
  switch (photo.status) {
    case "accepted":
      return { tone: "success", title: "Accepted", reasons };
    case "accepted_with_warnings":
      return { tone: "warning", title: "Accepted, with notes", reasons };
    case "rejected":
      return { tone: "destructive", title: "Rejected", reasons: reasons.length ? reasons : ["This photo cannot be used for training."] };
    default:
      return { tone: "info", title: "Upload not finished", reasons: ["This photo never finished uploading. Delete it and upload it again."] };
  }
}

/** Accepted photos (with or without notes) are the ones a training can use. */
export function isUsable(photo: Pick<Schemas["Photo"], "status">): boolean {
  return photo.status === "accepted" || photo.status === "accepted_with_warnings";
}

export const MIN_PHOTOS = 10;
export const MAX_PHOTOS = 30;

/** The 10-30 rule as a sentence, from the number of accepted photos. */
export function countText(accepted: number): { text: string; ready: boolean } {
  if (accepted < MIN_PHOTOS) {
    const missing = MIN_PHOTOS - accepted;
    return { text: `${accepted} accepted — add ${missing} more to train`, ready: false };
  }
  if (accepted <= MAX_PHOTOS) return { text: `${accepted} accepted — enough to train`, ready: true };
  return { text: `${accepted} accepted — a training uses at most ${MAX_PHOTOS}; you will pick which on the Train page`, ready: true };
}

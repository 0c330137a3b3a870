/**
 * The erasure of the account, in words, from `GET /v1/me/deletion` (ADR 0008). Pure, tested.
 *
 * `scheduled`: requests already running finish first (the gateway's grace: 16 minutes by default,
 *   longer than any request's deadline and any upload link);
 * `erasing`: every service removes the user's data, in rounds until one finds nothing left;
 * `finishing`: the sign-in and the gateway's own records go; `completed`: nothing is left.
 */

import { listWords } from "@/components/account/export-status";

export type DeletionLike = {
  status: string;
  round: number;
  services: Record<string, string>;
  removed: number;
};

export const SERVICE_WORDS: Record<string, string> = {
  billing: "payments and credits",
  generation: "images",
  prompts: "prompts",
  training: "photos and models",
  gateway: "account records",
};

export type DeletionView = {
  label: string;
  description: string;
  /** 0–100. */
  progress: number;
  done: boolean;
};

function serviceWords(name: string): string {
  return SERVICE_WORDS[name] ?? name.replace(/_/g, " ");
}

export function deletionView(deletion: DeletionLike): DeletionView {
  const names = Object.keys(deletion.services).sort();
  const done = names.filter((name) => deletion.services[name] === "done");
  const pending = names.filter((name) => deletion.services[name] !== "done");
  const removed = `${new Intl.NumberFormat("en").format(deletion.removed)} item${deletion.removed === 1 ? "" : "s"} removed so far`;
  switch (deletion.status) {
    case "scheduled":
      return {
        label: "Scheduled",
        description: "Waiting for anything already running to finish (up to about a quarter of an hour), so nothing is left behind. Nothing new can be started meanwhile.",
        progress: 5,
        done: false,
      };
    case "erasing": {
      const share = names.length ? done.length / names.length : 0;
      const still = pending.length ? ` Still working on: ${listWords(pending.map(serviceWords))}.` : "";
      return {
        label: deletion.round > 1 ? `Erasing (check ${deletion.round})` : "Erasing",
        description:
          deletion.round > 1
            ? `Checking again that nothing was left behind. ${removed}.${still}`
            : `Removing your photos, models, images and records. ${removed}.${still}`,
        progress: 10 + Math.round(share * 75),
        done: false,
      };
    }
    case "finishing":
      return { label: "Finishing", description: `Removing your sign-in and the last records. ${removed}.`, progress: 92, done: false };
    case "completed":
      return { label: "Deleted", description: "Everything of your account is gone. Signing you out…", progress: 100, done: true };
    default:
      return { label: deletion.status, description: removed, progress: 5, done: false };
  }
}

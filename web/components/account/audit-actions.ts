/**
 * An audit entry (`GET /v1/me/audit`) in words. The gateway records: checkouts started, the
 * billing portal opened, exports requested and their links issued, the erasure requested, and
 * credit corrections by support, and what support did on the account and why. Unknown actions still read as words. Pure, tested.
 */

export type AuditLike = {
  actor: string;
  action: string;
  details: Record<string, unknown>;
};

const ACTORS: Record<string, string> = { user: "You", system: "Visiona", operator: "Support" };

function text(value: unknown): string | null {
  return typeof value === "string" && value ? value : typeof value === "number" ? String(value) : null;
}

const JOBS: Record<string, string> = { training: "training", generation: "generation" };

function jobWords(kind: unknown): string {
  return (typeof kind === "string" && JOBS[kind]) || "job";
}

/** Support's acts say why: the reason the operator gave is the user's to read. */
function withReason(words: string, details: Record<string, unknown>): string {
  const reason = text(details.reason);
  return reason ? `${words}: “${reason}”` : words;
}

export function actorWords(actor: string): string {
  return ACTORS[actor] ?? actor;
}

export function auditWords(entry: AuditLike): string {
  const d = entry.details;
  switch (entry.action) {
    case "billing.checkout_created": {
      const item = text(d.item_id);
      const kind = d.kind === "plan" ? "plan" : d.kind === "pack" ? "credit pack" : null;
      return item ? `Opened a checkout for the ${item} ${kind ?? "item"}` : "Opened a checkout";
    }
    case "billing.portal_opened":
      return "Opened the billing portal";
    case "account.export_requested":
      return "Asked for a copy of the account's data";
    case "account.export_link_issued":
      return "Got a download link for a data export";
    case "account.erasure_requested":
      return "Asked to delete the account";
    case "admin.job.retried":
      return withReason(`Support restarted your stuck ${jobWords(d.kind)}`, d);
    case "admin.job.failed":
      return withReason(`Support stopped your ${jobWords(d.kind)}; credits it held were released`, d);
    case "admin.credits.granted": {
      const amount = text(d.amount);
      return withReason(amount ? `Support added ${amount} credits` : "Support added credits", d);
    }
    case "admin.credits.clawed_back": {
      const amount = text(d.amount);
      return withReason(amount ? `Support took back ${amount} credits` : "Support took back credits", d);
    }
    case "admin.user.viewed":
      return withReason("Support looked at your account (never your photos, images or prompts)", d);
    case "credits.adjusted": {
      const balance = text(d.balance);
      return balance ? `Credits corrected by support (balance now ${balance})` : "Credits corrected by support";
    }
    default: {
      const words = entry.action.replace(/[._]+/g, " ").trim();
      return words ? words.charAt(0).toUpperCase() + words.slice(1) : "Action";
    }
  }
}

/**
 * The one place a problem+json answer becomes what a person reads: a message and a way forward.
 * The gateway's `code` is stable; its `detail` is for developers and is shown only as a fallback.
 */

export type Problem = {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
  request_id?: string;
  errors?: { loc?: (string | number)[]; msg?: string; type?: string }[];
  max_bytes?: number;
  max_size?: number;
};

/** What to offer next: a link, a retry, or signing in again. */
export type Action =
  | { kind: "retry" }
  | { kind: "sign-in" }
  | { kind: "link"; href: string; label: string }
  | { kind: "none" };

/**
 * Who reads the problem. The same code can need other words for an operator acting on someone
 * else's account: `insufficient_credits` tells a user to buy credits, an operator that the
 * user has fewer to take back.
 */
export type Audience = "user" | "operator";

export type HumanProblem = {
  code: string;
  title: string;
  message: string;
  action: Action;
  /** Seconds to wait before trying again (Retry-After), when the server said so. */
  retryAfterS: number | null;
};

const RETRY: Action = { kind: "retry" };
const BUY: Action = { kind: "link", href: "/billing", label: "Buy credits" };
const PHOTOS: Action = { kind: "link", href: "/photos", label: "Go to photos" };
const MODELS: Action = { kind: "link", href: "/models", label: "See your models" };

type Entry = { title: string; message: string; action?: Action };

const MESSAGES: Record<string, Entry> = {
  // Sessions
  missing_token: { title: "Please sign in", message: "Your session has ended. Sign in to continue.", action: { kind: "sign-in" } },
  invalid_token: { title: "Please sign in again", message: "We could not confirm your session. Sign in again to continue.", action: { kind: "sign-in" } },
  token_expired: { title: "Your session expired", message: "Sign in again to pick up where you left off.", action: { kind: "sign-in" } },
  cross_site_request: { title: "Request blocked", message: "This request did not come from Visiona's own pages, so we did not act on it. Reload the page and try again.", action: RETRY },
  account_erasing: { title: "Your account is being deleted", message: "Nothing new can be started while your data is being erased.", action: { kind: "link", href: "/account", label: "See deletion progress" } },
  account_erased: { title: "This account was deleted", message: "Its data is gone. Sign in with another account to continue.", action: { kind: "sign-in" } },
  // Load and outages
  rate_limited: { title: "Slow down a little", message: "You are sending requests faster than we can take them.", action: RETRY },
  service_unavailable: { title: "Visiona is catching its breath", message: "Part of Visiona is restarting. Nothing you did was lost.", action: RETRY },
  dependency_unavailable: { title: "Visiona is catching its breath", message: "Part of Visiona is restarting. Nothing you did was lost.", action: RETRY },
  billing_unavailable: { title: "Billing is briefly unavailable", message: "Your credits are safe; try again in a moment.", action: RETRY },
  training_unavailable: { title: "Training is briefly unavailable", message: "Your photos and models are safe; try again in a moment.", action: RETRY },
  prompts_unavailable: { title: "Prompt help is briefly unavailable", message: "Try again in a moment, or turn enhancement off.", action: RETRY },
  deadline_exceeded: { title: "That took too long", message: "Visiona did not answer in time. It is safe to try again.", action: RETRY },
  internal_error: { title: "Something went wrong on our side", message: "We have logged it. Try again; if it keeps happening, contact support with the reference below.", action: RETRY },
  idempotency_key_in_progress: { title: "Still working on it", message: "Your first click is still being handled. Wait a moment.", action: RETRY },
  idempotency_unavailable: { title: "Visiona is catching its breath", message: "Try again in a moment; you will not be charged twice.", action: RETRY },
  idempotency_key_reused: { title: "Already sent", message: "This request was already made with different details. Reload and try again.", action: RETRY },
  exports_unavailable: { title: "Exports are briefly unavailable", message: "Try again in a moment.", action: RETRY },
  // Input
  validation_error: { title: "Please check the form", message: "Some of what you entered is not valid." },
  malformed_body: { title: "Please check the form", message: "Some of what you entered could not be read." },
  unsupported_media_type: { title: "Unsupported request", message: "Reload the page and try again.", action: RETRY },
  body_too_large: { title: "Too much at once", message: "That request is too large. Send less at a time." },
  string_too_long: { title: "Too long", message: "Shorten the text and try again." },
  not_found: { title: "Not found", message: "It may have been deleted.", action: { kind: "link", href: "/dashboard", label: "Back to dashboard" } },
  route_not_found: { title: "Not found", message: "That page of the API does not exist.", action: { kind: "none" } },
  // Credits and payments
  insufficient_credits: { title: "Not enough credits", message: "Buy a credit pack or subscribe to continue.", action: BUY },
  insufficient_quota: { title: "Not enough credits", message: "Buy a credit pack or subscribe to continue.", action: BUY },
  no_billing_account: { title: "No purchases yet", message: "Invoices and your payment method appear in the billing portal after your first purchase: buy a credit pack or a plan first.", action: BUY },
  payment_declined: { title: "Payment declined", message: "Your bank declined the payment. Try another card." , action: BUY },
  plan_already_active: { title: "You already have a plan", message: "Switch or cancel it in the billing portal; nothing was charged.", action: { kind: "link", href: "/billing", label: "Open billing" } },
  plan_not_found: { title: "Plan not found", message: "Pick a plan from the billing page.", action: BUY },
  // Billing's code for a credit pack it does not sell (style packs answer style_pack_not_found).
  pack_not_found: { title: "Credit pack not found", message: "Pick a pack from the billing page.", action: BUY },
  stripe_unavailable: { title: "Payments are briefly unavailable", message: "Nothing was charged. Try again in a moment.", action: RETRY },
  stripe_rate_limited: { title: "Payments are busy", message: "Nothing was charged. Try again in a moment.", action: RETRY },
  stripe_request_refused: { title: "Payment could not start", message: "Nothing was charged. Try again, or contact support.", action: RETRY },
  stripe_not_configured: { title: "Payments are not set up", message: "This Visiona has no payment provider configured." },
  stripe_catalog_mismatch: { title: "Payments are misconfigured", message: "Nothing was charged. We have been told." },
  // Photos
  photo_too_large: { title: "Photo too large", message: "That photo is larger than we accept. Export it smaller and try again." },
  photo_limit_reached: { title: "Enough photos", message: "You have reached the photo limit. Delete some to add others.", action: PHOTOS },
  photo_not_found: { title: "Photo not found", message: "It may have been deleted.", action: PHOTOS },
  photo_not_uploaded: { title: "Upload not finished", message: "That photo never reached us. Upload it again.", action: PHOTOS },
  photo_not_accepted: { title: "A photo was not accepted", message: "Train with accepted photos only.", action: PHOTOS },
  photo_in_use: { title: "Photo in use", message: "A training is using this photo. Try again when it finishes." },
  photo_count_invalid: { title: "Wrong number of photos", message: "A training needs 10 to 30 accepted photos.", action: PHOTOS },
  photo_ids_duplicate: { title: "Same photo twice", message: "Each photo can be used once per training." },
  upload_count_invalid: { title: "Too many at once", message: "Upload up to 30 photos at a time." },
  content_type_unsupported: { title: "Unsupported file", message: "Use JPEG, PNG, WebP or HEIC photos." },
  // Models and training
  model_not_found: { title: "Model not found", message: "It may have been deleted.", action: MODELS },
  model_not_ready: { title: "Model not ready yet", message: "Wait until its training has finished.", action: MODELS },
  model_unavailable: { title: "Model no longer available", message: "The provider no longer has this model. Train it again from your photos.", action: { kind: "link", href: "/train", label: "Train again" } },
  model_finished: { title: "Training already finished", message: "There is nothing left to cancel.", action: MODELS },
  model_limit_reached: { title: "Model limit reached", message: "Delete a model to train another.", action: MODELS },
  training_limit_reached: { title: "Training limit reached", message: "Wait for a training to finish before starting another.", action: MODELS },
  preset_unknown: { title: "Unknown preset", message: "Pick fast, balanced or quality." },
  name_invalid: { title: "Name not valid", message: "Use 1 to 80 characters." },
  trigger_word_invalid: { title: "Trigger word not valid", message: "Use letters and digits only." },
  // Generation and prompts
  generation_not_found: { title: "Generation not found", message: "It may have been deleted." },
  generation_finished: { title: "Already finished", message: "There is nothing left to cancel." },
  generation_limit_reached: { title: "Too many at once", message: "Wait for your running generations to finish." },
  image_not_found: { title: "Image not found", message: "It may have been deleted.", action: { kind: "link", href: "/gallery", label: "Open gallery" } },
  prompt_refused: { title: "Prompt refused", message: "That prompt asks for something Visiona will not make. Change it and try again." },
  llm_rejected_prompt: { title: "Prompt refused", message: "That prompt asks for something Visiona will not make. Change it and try again." },
  prompt_invalid: { title: "Prompt not valid", message: "Write a prompt of 1 to 2,000 characters." },
  invalid_prompt: { title: "Prompt not valid", message: "Write a prompt of 1 to 2,000 characters." },
  style_pack_not_found: { title: "Style not found", message: "Pick a style from the list." },
  aspect_ratio_invalid: { title: "Aspect ratio not valid", message: "Pick one from the list." },
  num_outputs_invalid: { title: "Number of images not valid", message: "Pick 1 to 4 images." },
  lora_scale_invalid: { title: "Likeness strength not valid", message: "Pick a value between 0 and 2." },
  seed_invalid: { title: "Seed not valid", message: "Use a whole number, or leave it empty for a random one." },
  output_format_invalid: { title: "Format not valid", message: "Pick a format from the list." },
  llm_unavailable: { title: "Prompt help is briefly unavailable", message: "Try again, or turn enhancement off.", action: RETRY },
  llm_rate_limited: { title: "Prompt help is busy", message: "Try again in a moment, or turn enhancement off.", action: RETRY },
  llm_not_configured: { title: "Prompt help is off", message: "Turn enhancement off to generate." },
  // Account
  export_not_found: { title: "Export not found", message: "It may have expired. Start a new one.", action: { kind: "link", href: "/account", label: "Open account" } },
  deletion_not_found: { title: "No deletion in progress", message: "Your account is not being deleted." },
  // The operator console (only operators reach these routes)
  reason_required: { title: "Say why", message: "Write the reason (a ticket number, what the user asked): it goes into the audit log." },
  job_not_found: { title: "Job not found", message: "No job of that kind has this id. Refresh the list.", action: RETRY },
  job_finished: { title: "That job has already ended", message: "It finished, failed or was canceled meanwhile, so there is nothing to retry. Refresh the list.", action: RETRY },
  consumer_not_found: { title: "Consumer group not found", message: "That service has no consumer group of this name. Refresh the list.", action: RETRY },
  dead_letter_not_found: { title: "Dead letter already gone", message: "Someone replayed or discarded it meanwhile. Refresh the list.", action: RETRY },
};

/** Where an operator needs other words than a user for the same code. */
const OPERATOR_MESSAGES: Record<string, Entry> = {
  insufficient_credits: {
    title: "Not that many credits to take back",
    message: "The user has fewer credits available than that (credits held by running jobs cannot be taken). Take back at most what is available; nothing was changed.",
  },
  route_not_found: {
    title: "No operator access",
    message: "Your session does not carry the operator role (any more). Sign in again as an operator.",
    action: { kind: "sign-in" },
  },
  not_found: { title: "Not found", message: "It may have been deleted or may never have existed. Check the id.", action: { kind: "none" } },
};

const BY_STATUS: Record<number, Entry> = {
  400: { title: "Please check the form", message: "Some of what you entered is not valid." },
  401: MESSAGES.invalid_token!,
  403: { title: "Not allowed", message: "You do not have access to that." },
  404: MESSAGES.not_found!,
  409: { title: "That changed meanwhile", message: "Reload the page to see the latest state.", action: RETRY },
  413: MESSAGES.body_too_large!,
  422: MESSAGES.validation_error!,
  429: MESSAGES.rate_limited!,
  503: MESSAGES.service_unavailable!,
};

const NETWORK: Entry = {
  title: "Visiona is out of reach",
  message: "Check your connection; we will try again when you are back online.",
  action: RETRY,
};

function formatBytes(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${Math.round(bytes / (1024 * 1024))} MB` : `${Math.round(bytes / 1024)} KB`;
}

/** The sentence for a problem, with the specifics the gateway gave (a size limit, a field). */
export function humanProblem(problem: Problem | null, status: number, retryAfterS: number | null = null, audience: Audience = "user"): HumanProblem {
  const code = problem?.code ?? (status === 0 ? "network_error" : `http_${status}`);
  const entry =
    (problem?.code && audience === "operator" ? OPERATOR_MESSAGES[problem.code] : undefined) ??
    (problem?.code ? MESSAGES[problem.code] : undefined) ??
    (status === 0 ? NETWORK : undefined) ??
    BY_STATUS[status] ??
    (status >= 500 ? MESSAGES.internal_error! : { title: "That did not work", message: problem?.title ?? "Try again." });
  let message = entry.message;
  if (problem?.max_bytes) message = `${message} The limit is ${formatBytes(problem.max_bytes)}.`;
  const field = problem?.errors?.[0];
  if ((code === "validation_error" || status === 422) && field?.msg) {
    const where = field.loc?.filter((part) => part !== "body").join(" › ");
    message = `${message} ${where ? `${where}: ` : ""}${field.msg}.`;
  }
  if (retryAfterS !== null && retryAfterS > 0) {
    message = `${message} Try again in ${retryAfterS} s.`;
  }
  return { code, title: entry.title, message, action: entry.action ?? { kind: "none" }, retryAfterS };
}

export const KNOWN_CODES: readonly string[] = Object.keys(MESSAGES);

/**
 * The typed confirmation before an account is erased.
 *
 * Decision: the person must type the phrase itself, word for word, but not fight their
 * keyboard for it. Surrounding spaces, runs of spaces and letter case are ignored (phones
 * capitalise the first letter and add a space after autocompletion), and typographic
 * look-alikes are folded by NFKC; nothing else is forgiven: no missing or extra word, no
 * prefix, no typo. The comparison is on what was typed, never on a pasted-in guess of ours.
 */

export const DELETE_PHRASE = "delete my account";

export function normalisePhrase(typed: string): string {
  return typed.normalize("NFKC").trim().replace(/\s+/g, " ").toLowerCase();
}

export function confirmsDeletion(typed: string): boolean {
  return normalisePhrase(typed) === DELETE_PHRASE;
}

/** What to tell the person about the phrase so far (for the field's live hint). */
export function phraseHint(typed: string): string {
  if (confirmsDeletion(typed)) return "Confirmed. The button below is now enabled.";
  const so = normalisePhrase(typed);
  if (!so) return `Type “${DELETE_PHRASE}” to enable the button.`;
  if (DELETE_PHRASE.startsWith(so)) return "Keep typing…";
  return `That does not match. Type exactly “${DELETE_PHRASE}”.`;
}

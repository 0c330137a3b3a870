import { confirmsDeletion, DELETE_PHRASE, normalisePhrase, phraseHint } from "@/components/account/delete-confirmation";

describe("the typed confirmation before deleting an account", () => {
  it("is the exact phrase", () => {
    expect(DELETE_PHRASE).toBe("delete my account");
    expect(confirmsDeletion("delete my account")).toBe(true);
  });

  it("forgives what keyboards do: case, surrounding and doubled spaces, look-alike characters", () => {
    expect(confirmsDeletion("Delete my account")).toBe(true); // a phone capitalises the first letter
    expect(confirmsDeletion("DELETE MY ACCOUNT")).toBe(true);
    expect(confirmsDeletion("  delete my account ")).toBe(true); // autocompletion adds a space
    expect(confirmsDeletion("delete  my\taccount")).toBe(true);
    expect(confirmsDeletion("delete\u00a0my account")).toBe(true); // a no-break space
    expect(confirmsDeletion("ｄｅｌｅｔｅ my account")).toBe(true); // full-width letters (NFKC)
    expect(normalisePhrase("  Delete   MY account ")).toBe("delete my account");
  });

  it("forgives nothing else: no prefix, no extra or missing word, no typo", () => {
    for (const typed of ["", "delete", "delete my", "delete my accoun", "delete my account now", "please delete my account", "delete my acount", "deletemyaccount", "delete my account."]) {
      expect(confirmsDeletion(typed), typed).toBe(false);
    }
  });

  it("tells how far along the typing is", () => {
    expect(phraseHint("")).toMatch(/Type “delete my account”/);
    expect(phraseHint("Delete my")).toBe("Keep typing…");
    expect(phraseHint("remove it")).toMatch(/does not match/);
    expect(phraseHint("delete my account")).toMatch(/enabled/);
  });
});

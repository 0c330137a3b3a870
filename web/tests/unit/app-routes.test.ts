import { readdirSync } from "node:fs";
import { resolve } from "node:path";

import { APP_ROUTES } from "@/lib/auth/routes";

describe("the signed-in routes the proxy guards", () => {
  it("are every page of app/(app), so a new page is never left open to signed-out visitors", () => {
    const pages = readdirSync(resolve(__dirname, "../../app/(app)"), {
      withFileTypes: true,
    })
      .filter((entry) => entry.isDirectory())
      .map((entry) => `/${entry.name}`);
    expect([...APP_ROUTES].sort()).toEqual(pages.sort());
  });
});

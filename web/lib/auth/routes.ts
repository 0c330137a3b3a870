// The signed-in part of the app: every page under app/(app) (tests/unit/app-routes.test.ts
// holds the two together). Everything else (landing, sign-in, not-found) is public.
export const APP_ROUTES = [
  "/dashboard",
  "/photos",
  "/train",
  "/models",
  "/generate",
  "/gallery",
  "/billing",
  "/account",
  "/admin",
] as const;

import { devAuthRefusal } from "@/lib/auth/mode";

/** Stop the server before it answers anyone when dev sign-in would be unsafe here. */
export function refuseUnsafeDevAuth(env: Readonly<Record<string, string | undefined>>): void {
  const refusal = devAuthRefusal(env);
  if (refusal) {
    console.error(`visiona-web refuses to start: ${refusal}`);
    process.exit(78); // EX_CONFIG
  }
}

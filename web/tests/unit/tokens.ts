/** An unsigned JWT-shaped token with these claims (the page reads, never verifies, its cookie). */
export function fakeToken(claims: Record<string, unknown>): string {
  const part = (value: unknown) => btoa(JSON.stringify(value)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  return `${part({ alg: "RS256", kid: "test" })}.${part(claims)}.signature`;
}

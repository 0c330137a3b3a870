"""One adapter per external API the gateway calls itself (Clerk)."""

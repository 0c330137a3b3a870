"""One adapter per external API: Replicate (:mod:`.replicate`)."""

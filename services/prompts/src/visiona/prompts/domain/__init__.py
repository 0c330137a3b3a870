"""The prompts service's rules, free of I/O (no SQL, no SDK, no network):

- :mod:`.prompt`: input checks, the trigger word, style packs and their templates, what
  preparing or enhancing a prompt gives;
- :mod:`.moderation`: the rule layer (word lists on a normalised prompt), the refusal
  categories and the refusal kept for its user;
- :mod:`.judge`: what we ask the LLM about a prompt, how its answer is read, and the cache key.
"""

"""The prompts service's part in the user's erasure and export sagas (contract in
``visiona.kit.events``; the handlers are subscribed in :mod:`visiona.prompts.consumers`).

No provider holds anything of the user (the LLM calls are stateless), so both run in the
consumer's transaction, with its inbox claim: :mod:`.erasure` and :mod:`.export`.
"""

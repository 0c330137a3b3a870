"""Every SQL statement of the training service: :mod:`.model` (``models``), :mod:`.photo`
(``photos``) and :mod:`.account` (``erasures``, ``erasure_answers``, ``exports``)."""

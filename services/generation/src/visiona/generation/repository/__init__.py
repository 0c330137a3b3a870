"""Every SQL statement of the generation service (the ``generation`` schema): generations
(:mod:`.generation`), their images (:mod:`.image`) and the account requests (:mod:`.account`).
Textual SQL on the unit of work's session; the tables' row-level security keeps each unit of
work to its user's rows."""

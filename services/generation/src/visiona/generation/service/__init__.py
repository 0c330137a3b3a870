"""Generation's use cases: generations (:mod:`.generation`) and the images they made
(:mod:`.image`)."""

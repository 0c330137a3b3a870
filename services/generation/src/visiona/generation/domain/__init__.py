"""Generation's domain, free of I/O: the generation aggregate (:mod:`.generation`) and its
images (:mod:`.image`)."""

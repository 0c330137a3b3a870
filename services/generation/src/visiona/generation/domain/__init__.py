"""Generation's domain, free of I/O: the generation aggregate (:mod:`.generation`), the checked
request that creates one (:mod:`.request`) and its images (:mod:`.image`)."""

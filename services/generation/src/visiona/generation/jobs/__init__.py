"""Background work on generation's rows: the generations' own steps (:mod:`.generation`), the
object sweep (:mod:`.sweep`) and the move of images stored before owner keys
(:mod:`.legacy_keys`). The account requests' workers are in :mod:`visiona.generation.account`."""

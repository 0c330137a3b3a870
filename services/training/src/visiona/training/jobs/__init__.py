"""Training's background work on rows: :mod:`.model` (each model's next step: ask for
credits, launch, poll, finalize, verify, cancel, purge), :mod:`.upload_sweep` (upload slots
and objects nobody owns), :mod:`.retention` (photos and datasets past their retention) and
:mod:`.legacy_keys` (objects stored before owner keys)."""

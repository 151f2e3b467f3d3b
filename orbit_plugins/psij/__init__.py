"""Jobs through PSI/J (``psij-python``): see :mod:`.plugin`; wire models in :mod:`.schema`."""

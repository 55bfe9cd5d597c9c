"""The built-in training methods, one folder each (``config.py``: the spec;
``trainer.py``: the :class:`aelab.training.registry.Trainer`)."""

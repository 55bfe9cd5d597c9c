"""The built-in model families, one folder each: ``config.py`` (the spec,
light) and ``family.py`` (the implementation); see :mod:`aelab.models.family`."""

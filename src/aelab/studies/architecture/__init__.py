"""Architecture evolution on the study machinery: an architecture space, the
VAE article's mutation rule, aging evolution, and the outputs that show how
a search went (generations, lineage, fitness against depth)."""
from .space import Architecture, ArchitectureSpec, Space

__all__ = ["Architecture", "ArchitectureSpec", "Space"]

"""Templates and image definitions; shipped inside kitbuild as ``builder.definitions``."""

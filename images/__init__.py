"""Image definitions and templates; shipped inside kitbuild as the ``builder.images`` package."""

"""kitbuild: build production images of Django projects, sized to their container."""

__version__ = "0.1.0"

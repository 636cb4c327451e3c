"""kitbuild's errors: each one's ``str()`` is the single line the user sees."""


class KitError(Exception):
    """A problem the user can fix; the CLI prints it on one line and exits 1."""

"""kitbuild's commands, one module each: its name, its options and its run function.

Each module has ``NAME``, ``SUMMARY``, ``configure(parser)`` and ``run(args, io) -> int``,
and its docstring is the command's ``--help`` description. :mod:`builder.cli` lists them.
"""

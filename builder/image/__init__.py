"""The image stage: a Django project in, a production image out (``kitbuild build``).

Read in the order a build runs; :func:`builder.image.pipeline.build_project` wires them:

    project         inspect the project from its files, never importing its code
    config          the project's ``[tool.kitbuild]`` table and the build's flags
    dependencies    find the project's dependency declaration, formats in preference order
    locks           one module per format (uv.lock ... pyproject.toml), parsed into exact
                    pins for the image's Python, or requirements left to the resolver
    wheelhouse      fetch those pins on the host, so ``docker build`` needs no network
    cache           the host's cache of wheelhouses and base probes (``kitbuild cache``)
    bases           the Debian base images, made by mmdebstrap and ``docker import``
    steps           collectstatic, compilemessages, the project's own build commands
    hints           hints from build output: missing headers, a development settings default
    created         the ``org.opencontainers.image.created`` label
    context         render the self-contained build context from ``images/app/``
    service_images  the images around the app: the database server, the proxy
    pipeline        the stages above in order, behind small contracts

Only :mod:`builder.engine` talks to Docker; this stage hands it a context and a tag.
"""

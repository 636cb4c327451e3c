"""The deploy stage: one deployment (its env file), rendered for each engine.

    description   read and check an env file; plan the deployment as its containers will
    contract      what every engine says alike (app environment, secrets, probes, timing)
    output        write what a target renders, whole or not at all
    <target>      one module per engine: ``VARIABLES``, ``render(contract) -> Rendered``

The targets are listed in :data:`builder.deploy.targets.LISTED`, and only there.
"""

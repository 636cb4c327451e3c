"""The deploy stage: one deployment (its env file), rendered for each engine.

    description   read and check an env file; plan the deployment as its containers will
    output        write what a target renders, whole or not at all
    <target>      one module per engine: ``render(deployment) -> Rendered``

Targets are listed in :data:`builder.deploy.targets.TARGETS`.
"""

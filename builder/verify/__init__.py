"""The verify stage: prove an image keeps its connection budget under overload.

options   what a run is asked to do, checked before anything starts
stack     the run's containers: server, migrate, app (through the engine gateway)
server    a session on the server that reads its counters (the one status client)
load      a bounded HTTP load generator
judge     measurements in, verdict out (pure)
report    the verdict as text or JSON
run       the stages wired together, with the stack, monitor and load as parameters
"""

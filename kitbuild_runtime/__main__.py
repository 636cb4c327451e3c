"""``python -m kitbuild_runtime``: the image's entrypoint (:mod:`kitbuild_runtime.entrypoint`)."""

import sys

from kitbuild_runtime.entrypoint import main

sys.exit(main(sys.argv[1:]))

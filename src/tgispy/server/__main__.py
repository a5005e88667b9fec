"""``python -m tgispy.server [ARGS]`` runs ``tgispy serve [ARGS]``."""

import sys

from tgispy.server._serve import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

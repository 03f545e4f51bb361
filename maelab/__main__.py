import sys

from maelab.cli import main

if __name__ == "__main__":  # a spawned worker imports this module again: it must not rerun
    sys.exit(main())

import sys

from maelab.cli import main

sys.exit(main())

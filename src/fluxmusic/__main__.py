"""``python -m fluxmusic`` (and ``torchrun -m fluxmusic``) runs the command line."""

import sys

from fluxmusic.cli import main

sys.exit(main())

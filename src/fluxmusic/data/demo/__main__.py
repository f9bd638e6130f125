"""``python -m fluxmusic.data.demo OUT_DIR [options]``: build the demo dataset without the main CLI."""

from fluxmusic.data.demo.cli import main

raise SystemExit(main())

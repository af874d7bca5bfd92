"""``python -m tools``: the developer's command (tools/cli.py), run from the repository root."""

import sys

from tools.cli import main

sys.exit(main())

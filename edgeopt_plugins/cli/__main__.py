"""``python -m edgeopt_plugins.cli`` is the same as ``edgeopt``."""

import sys

from edgeopt_plugins.cli._main import main

sys.exit(main())

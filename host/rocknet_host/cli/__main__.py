"""``python -m rocknet_host.cli``: the `rocknet` command."""

import sys

from . import main

sys.exit(main())

"""``python -m netns_kit``: the ``netns-kit`` command."""

import sys

from netns_kit.cli import main

sys.exit(main())

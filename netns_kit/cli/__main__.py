"""``python -m netns_kit.cli``: the ``netns-kit`` command."""

import sys

from . import main

sys.exit(main())

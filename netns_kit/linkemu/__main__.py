import sys

from netns_kit.linkemu.cli import main

sys.exit(main())

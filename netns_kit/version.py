"""The version of netns_kit (a value: printed scripts name it, ``netns-kit --version`` shows it)."""

__version__ = "0.1.0"

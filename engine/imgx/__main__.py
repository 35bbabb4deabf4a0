"""``python -m imgx``: the same as the ``imgx`` command."""

from .cli import main

main()

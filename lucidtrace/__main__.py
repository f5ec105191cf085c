"""``python -m lucidtrace``: the ``lucidtrace`` command."""

from lucidtrace.cli import main

main()

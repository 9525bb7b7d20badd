"""`python -m chainrule ...`: the same as the `chainrule` command (e.g. where the script is not on PATH)."""

from chainrule.cli import main

raise SystemExit(main())

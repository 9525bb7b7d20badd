"""One module per interface, each defining `INTERFACE` (see `chainrule.grade.spec`)."""

"""`python -m cli`: the `keepwell` command (what MLproject's entry points run)."""

from cli import main

main()

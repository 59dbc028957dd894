"""`python -m cli ...` is `sketch2color ...` (the supervisor starts its children this way)."""

from cli.main import main

main()

"""`python -m aigc` is the `aigc` command."""

from aigc.cli import main

raise SystemExit(main())

"""``python -m plexum_openai_provider`` is the plugin binary."""

from .cli import main

raise SystemExit(main())

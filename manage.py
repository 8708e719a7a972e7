#!/usr/bin/env python
"""Django's command-line utility for the taskstream demo site."""

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(1, str(Path(__file__).resolve().parent / "src"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")
    # Beside a running `make run`: its embedded Redis (createsuperuser and the other
    # commands pass the settings checks, and what they publish reaches the browsers).
    var_dir = Path(os.environ.get("TASKSTREAM_VAR_DIR", Path(__file__).resolve().parent / "var"))
    embedded = var_dir / "embedded-redis-url"
    if not os.environ.get("REDIS_URL") and embedded.exists():
        os.environ["REDIS_URL"] = embedded.read_text().strip()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)

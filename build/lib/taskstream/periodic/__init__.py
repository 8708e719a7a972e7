"""Periodic tasks: taskstream's own schedules, the run history of every beat-sent task,
missed-run alerts, and a beat scheduler that only one process at a time drives."""

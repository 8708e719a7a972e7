"""taskstream: live background jobs and real-time updates for Django."""

__version__ = "0.1.0"

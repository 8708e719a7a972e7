"""Shared documents edited together: Yjs updates applied by pycrdt on the server, over the hub."""

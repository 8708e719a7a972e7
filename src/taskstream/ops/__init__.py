"""Operating taskstream: the audit trail, ``/metrics``, job logs and staff pages' data.

A feature app: it registers its router, receivers and metrics in ``AppConfig.ready()``;
the hub and the jobs app never import it (it listens to their signals).
"""

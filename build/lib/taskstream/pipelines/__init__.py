"""File pipelines: CSV uploads processed by a Celery canvas into downloadable reports.

``validate → split → chord(group(process_chunk…), aggregate) → render``; the pipeline is a
``Job`` whose steps and chunks are its child jobs, so its progress rolls up live.
"""

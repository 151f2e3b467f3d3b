"""Batch-system queues, jobs and allocations: see :mod:`.plugin`; models in :mod:`.schema`."""

"""The ``globus`` plugin: Globus Transfer orchestration (see ``plugin.py``; needs globus-sdk)."""

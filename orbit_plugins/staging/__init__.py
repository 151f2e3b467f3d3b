"""The ``staging`` plugin: chunked, resumable, checksummed file transfer (see ``plugin.py``)."""

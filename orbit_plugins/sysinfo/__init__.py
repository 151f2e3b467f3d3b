"""The ``sysinfo`` plugin: home directory, host role and system metrics.

``schema`` holds the wire models (pydantic only); ``plugin`` the handlers; ``collect``,
``gpu`` and ``role`` the blocking, individually testable collectors.
"""

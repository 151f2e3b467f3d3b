"""The ``tasks`` feature: executable and function tasks, run in worker subprocesses.

``schema`` holds the wire models (pydantic only, used by both sides). Endpoint side:
``plugin`` the operations, ``tracker`` the active tasks' states, waiters and events,
``pool`` + ``worker`` the function worker processes (``rhapsody_backend`` the optional
rhapsody-py pool), ``execs`` executables, ``store`` SQLite. Client side: ``client``
(``OrbitExecutor``, ``AsyncOrbitExecutor``). Commands: ``cli`` (``orbit task``, ``orbit run``).
Docs: ``README.md``.
"""

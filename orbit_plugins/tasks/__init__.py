"""The ``tasks`` plugin: executable and function tasks, run in worker subprocesses.

``schema`` holds the wire models (pydantic only, for clients); ``plugin`` the operations;
``pool`` + ``worker`` the function worker processes; ``execs`` executables; ``store`` SQLite.
"""

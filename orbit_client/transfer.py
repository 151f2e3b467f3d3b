"""Moved to :mod:`orbit_plugins.globus.client`; this alias keeps old imports working."""

from orbit_plugins.globus.client import TERMINAL, GlobusTransfers

__all__ = ["TERMINAL", "GlobusTransfers"]

"""``python -m orbit_endpoint``: run an endpoint configured by ``ORBIT_ENDPOINT_*`` variables."""

from __future__ import annotations

from .service import main

if __name__ == "__main__":
    main()

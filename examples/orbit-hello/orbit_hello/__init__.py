"""orbit-hello: the smallest complete Orbit feature (operation, CLI command, Explorer page)."""

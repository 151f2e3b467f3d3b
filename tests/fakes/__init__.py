"""Local fakes of external services, used by tests instead of the real thing."""

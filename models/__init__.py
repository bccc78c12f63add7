"""Data models: pydantic models crossing Temporal/HTTP boundaries; SQLModel tables in models.db."""

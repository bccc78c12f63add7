"""Cross-cutting plumbing: settings, logging, database engine, Temporal client, embedded services."""

"""SQLAlchemy storage: tables, repositories, the event log and the unit of work."""

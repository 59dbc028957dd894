"""Job systems for the worker tests come from tests/support.py; the fixtures that make them are in
tests/conftest.py (a private Redis per session, a job system per module)."""

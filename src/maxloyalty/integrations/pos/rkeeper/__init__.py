"""R-Keeper 7: we are its FarCards card server (`protocol.py` the XML, `service.py` the
lookups and the checks, `endpoints.py` the one route)."""

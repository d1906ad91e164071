from __future__ import annotations

from tests.ledger import conftest as ledger_fixtures

make_shop = ledger_fixtures.make_shop  # the ledger tests' fixture, shared here

"""The API harness fixtures (tests/api/conftest.py) and the simulator + worker + API stack
(tests/api/test_order_e2e.py) for the mosaic tests."""

from tests.api.conftest import api, make_api  # noqa: F401
from tests.api.test_order_e2e import stack_factory  # noqa: F401

"""The order-workflow fixtures (``order_stack``) for the end-to-end tests too."""

from tests.workflows.conftest import order_stack  # noqa: F401

"""The Temporal contract: the names that workflows, activities, starters, the worker and ``core`` share.

Workflow type names, workflow-id functions, ``ApplicationError.type`` names and search-attribute
keys, each defined once. A renamed workflow or error type is a change to deployed histories: the
strings below are what past histories and the replay tests contain.

Why here, in ``models/``: workflow files already import ``models`` inside
``workflow.unsafe.imports_passed_through()``, so the sandbox takes this module from the worker's
own import (no re-import per workflow run), and ``models/__init__.py`` imports nothing, so importing
this module loads only the standard library and ``temporalio.common``. It may not live in
``workflows/`` (activities do not import from workflow modules) nor in ``core/`` (where
``core.temporal`` reads settings). This module imports nothing else and must stay that way: every
import here is paid by the workflow sandbox and by every process that names a workflow.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

# --- workflow type names ----------------------------------------------------------------------

ORDER_WORKFLOW = "OrderWorkflow"
#: ``workflow.patched`` id of the order life cycle in fewer steps (the hold writes ``held`` and the
#: GUIDs, the submit ``submitted``, one activity closes the target, one settles and finalizes);
#: orders started before it replay their recorded steps (docs/order-workflow.md).
PATCH_ORDER_FEWER_STEPS = "order-fewer-steps"
#: ``workflow.patched`` id of the night learnt from the observatory monitor: a ``session_ended``
#: carrying the order's progress (the monitor ingested the session and wrote the night's end status)
#: is decided on without a session watch activity; orders started before it replay their watches
#: (docs/order-workflow.md, step 3).
PATCH_ORDER_NIGHT_FROM_MONITOR = "order-night-from-monitor"
OBSERVATORY_MONITOR_WORKFLOW = "ObservatoryMonitorWorkflow"
SUBSCRIPTION_WORKFLOW = "SubscriptionWorkflow"
PACK_PAYMENT_WORKFLOW = "PackPaymentWorkflow"
RECONCILIATION_WORKFLOW = "ReconciliationWorkflow"
REPAIR_WORKFLOW = "RepairWorkflow"
RETENTION_WORKFLOW = "RetentionWorkflow"
BACKUP_WORKFLOW = "BackupWorkflow"
CUSTOMER_SET_WORKFLOW = "CustomerSetWorkflow"


# --- workflow ids (business keys) -------------------------------------------------------------


def order_workflow_id(order_id: int) -> str:
    """``order-<order id>``: one ``OrderWorkflow`` per order, ever."""
    return f"order-{order_id}"


def subscription_workflow_id(customer_id: int) -> str:
    """``subscription-<customer id>``: the customer's ``SubscriptionWorkflow`` (an entity workflow)."""
    return f"subscription-{customer_id}"


def payment_workflow_id(payment_id: int) -> str:
    """``payment-<payment id>``: one ``PackPaymentWorkflow`` per credit-pack purchase."""
    return f"payment-{payment_id}"


def customer_set_workflow_id(set_id: int, version: int) -> str:
    """``customer-set-<set id>-v<version>``: one ``CustomerSetWorkflow`` per change of a customer
    Set (a retried request for the same change finds it already started)."""
    return f"customer-set-{set_id}-v{version}"


def monitor_workflow_id(telescope: str) -> str:
    """``observatory-monitor-<telescope>``: the one ``ObservatoryMonitorWorkflow`` of a telescope."""
    return f"observatory-monitor-{telescope}"


# --- ApplicationError types -------------------------------------------------------------------
# Raised non-retryable by activities and workflows. One identifier per error from the domain to
# HTTP: each string is also the domain error's ``code`` (``billing.errors``) and the HTTP error
# ``code``; api/errors.py holds the one code → status table.

#: Order: the hold found too few credits (details[0]: ``Shortfall`` as a dict).
ERR_INSUFFICIENT_CREDITS = "insufficient_credits"
#: Order: the plan does not allow the order (details[0]: field → reason).
ERR_PLAN_VIOLATION = "plan_violation"
#: Order: no such order row.
ERR_ORDER_NOT_FOUND = "order_not_found"
#: Order: Voyager refused a command (error reply or failed action result).
ERR_VOYAGER_REFUSED = "voyager_refused"
#: Order: the stored order cannot be run as it is (no shots, unknown filter, bad status change).
ERR_INVALID_ORDER = "invalid_order"
#: Customer Sets: no such Set of this customer (also another customer's: existence is not leaked).
ERR_SET_NOT_FOUND = "set_not_found"
#: Order: the ``abort`` update came too late (details[0]: the order's status).
ERR_ABORT_REFUSED = "order_not_abortable"

#: Payments: Stripe declined the card.
ERR_CARD_DECLINED = "card_declined"
#: Payments: the payment method does not exist.
ERR_PAYMENT_METHOD_INVALID = "payment_method_invalid"
#: Payments: Stripe answered 404 for something else than a payment method.
ERR_STRIPE_NOT_FOUND = "stripe_not_found"
#: Payments: Stripe refused the request (another 4xx).
ERR_STRIPE_REJECTED = "stripe_rejected"
#: Payments: Stripe could not be reached after the activity's retries.
ERR_STRIPE_UNAVAILABLE = "stripe_unavailable"
#: Payments: an activity failed with no type of its own.
ERR_PAYMENT_ERROR = "payment_error"
#: Payments: the PaymentIntent of a pack purchase could not be created.
ERR_PAYMENT_UNAVAILABLE = "payment_unavailable"
#: Payments: no such customer row.
ERR_UNKNOWN_CUSTOMER = "unknown_customer"

#: Subscription commands refused by their validators.
ERR_UNKNOWN_PLAN = "unknown_plan"
ERR_ALREADY_SUBSCRIBED = "already_subscribed"
ERR_NO_ACTIVE_SUBSCRIPTION = "no_active_subscription"
ERR_SUBSCRIPTION_ENDING = "subscription_ending"
ERR_SAME_PLAN = "same_plan"
ERR_CHANGE_PENDING = "change_pending"
ERR_ALREADY_CANCELLED = "already_cancelled"


# --- search attributes (Keyword) --------------------------------------------------------------
# Operators find and follow orders and customers in the Temporal UI by these
# (docs/order-workflow.md, Control); the dev server and docker-compose register them.

SA_CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")
SA_ORDER_STATUS = SearchAttributeKey.for_keyword("OrderStatus")
SA_TARGET_NAME = SearchAttributeKey.for_keyword("TargetName")
SA_PLAN = SearchAttributeKey.for_keyword("Plan")
#: The slug of the telescope an order runs on (docs/telescopes.md), set when its workflow starts.
SA_TELESCOPE = SearchAttributeKey.for_keyword("Telescope")
SEARCH_ATTRIBUTES: tuple[SearchAttributeKey, ...] = (SA_CUSTOMER_ID, SA_ORDER_STATUS, SA_TARGET_NAME, SA_PLAN,
                                                     SA_TELESCOPE)

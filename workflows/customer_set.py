"""``CustomerSetWorkflow``: one change of a customer Set (created, renamed, paused, resumed,
deleted) carried to Voyager (docs/sets.md).

The API records the change on the ``customer_set`` row and starts this workflow with the id
``customer-set-<id>-v<version>``; its one activity reads the row as it is then and makes the
RoboTarget Set match (activities/set_ops.py). The API has no Voyager link of its own: the
worker's pool is the only one.
"""

from __future__ import annotations

from temporalio import workflow

from workflows import _options as opt

with workflow.unsafe.imports_passed_through():
    from activities.set_ops import SetActivities
    from models import temporal_contract as contract
    from models.customer_sets import SetSyncInput, SetSyncResult


@workflow.defn(name=contract.CUSTOMER_SET_WORKFLOW)
class CustomerSetWorkflow:
    @workflow.run
    async def run(self, inp: SetSyncInput) -> SetSyncResult:
        return await workflow.execute_activity_method(SetActivities.sync_set, inp, **opt.VOYAGER_SET_SYNC)

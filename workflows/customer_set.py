"""``CustomerSetWorkflow``: one change of a customer Set (created, renamed, paused, resumed,
deleted) carried to Voyager (docs/sets.md).

The API records the change on the ``customer_set`` row and starts this workflow with the id
``customer-set-<id>-v<version>``; its activity reads the row as it is then and makes the
RoboTarget Set match (activities/set_ops.py). The API has no Voyager link of its own. In the
single-telescope shape the worker's pool runs it; in network mode (docs/network.md §2) it runs on
the site worker of every telescope the Set has orders on, one after the other, and a Set with no
order yet waits for its first submit to be created on that order's telescope.
"""

from __future__ import annotations

from temporalio import workflow

from workflows import _options as opt

with workflow.unsafe.imports_passed_through():
    from activities.set_ops import SetActivities
    from activities.set_sites import SetSiteActivities
    from models import temporal_contract as contract
    from models.customer_sets import SetSites, SetSyncInput, SetSyncResult

#: ``workflow.patched`` id of the per-site routing (runs started before it sync on the own queue).
PER_SITE = "set-sync-per-site"


@workflow.defn(name=contract.CUSTOMER_SET_WORKFLOW)
class CustomerSetWorkflow:
    @workflow.run
    async def run(self, inp: SetSyncInput) -> SetSyncResult:
        if not workflow.patched(PER_SITE):
            return await workflow.execute_activity_method(SetActivities.sync_set, inp, **opt.VOYAGER_SET_SYNC)
        sites: SetSites = await workflow.execute_activity_method(SetSiteActivities.sites_of_set, inp,
                                                                 **opt.DB_PATIENT)
        if sites.site_queues is None:
            return await workflow.execute_activity_method(SetActivities.sync_set, inp, **opt.VOYAGER_SET_SYNC)
        result = SetSyncResult(set_id=inp.set_id, guid="", action="on_first_order", version=0, paused=False)
        for queue in sites.site_queues:  # a site worker down: the change waits in its queue
            result = await workflow.execute_activity_method(SetActivities.sync_set, inp, task_queue=queue,
                                                            **opt.VOYAGER_SET_SYNC)
        return result

"""``ObservatoryMonitorWorkflow``: one per telescope (id ``observatory-monitor-<telescope>``).

It runs one long heartbeating activity (``monitor.watch_observatory``) that polls RoboTarget's run
and session lists and signals the order workflows; the activity returns after
``orders.monitor_run_for`` seconds and the workflow continues as new, so its history stays a few
events long however many nights it watches. A worker death is noticed through the heartbeat timeout
and the activity restarts on another worker; an activity that keeps failing is restarted after a
pause. The worker starts the monitor at boot (``worker.ensure_monitor``, USE_EXISTING), so there is
exactly one per telescope however many workers run; in network mode its watch activity runs on
the telescope's site worker (queue ``site-<slug>``, ``MonitorInput.site_queue``). Why a workflow rather than a worker-side task:
docs/order-workflow.md.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows import _options as opt

with workflow.unsafe.imports_passed_through():
    from activities.monitor import MonitorActivities
    from models import temporal_contract as contract
    from models.orders import MonitorInput, MonitorWatchRequest


@workflow.defn(name=contract.OBSERVATORY_MONITOR_WORKFLOW)
class ObservatoryMonitorWorkflow:
    @workflow.run
    async def run(self, inp: MonitorInput) -> None:
        try:
            # Network mode: the watch runs on the telescope's site worker and simply waits in its
            # queue while that worker is down (docs/network.md §2).
            options = opt.MONITOR_WATCH if inp.site_queue is None else {**opt.MONITOR_WATCH, "task_queue": inp.site_queue}
            await workflow.execute_activity_method(
                MonitorActivities.watch_observatory, MonitorWatchRequest(telescope=inp.telescope), **options
            )
        except ActivityError as err:
            workflow.logger.error("observatory monitor %s: watch failed, restarting: %s", inp.telescope, err)
            await workflow.sleep(opt.MONITOR_RESTART_DELAY)
        workflow.continue_as_new(MonitorInput(telescope=inp.telescope, iterations=inp.iterations + 1,
                                              site_queue=inp.site_queue))

"""Waiting for an app's thread workers in Pilot tests, without sleeping on the clock."""

from __future__ import annotations

import asyncio

from textual.worker import WorkerCancelled


async def workers_done(app) -> None:
    """Wait until no worker is running. A worker replaced by a newer one of its exclusive
    group ends "cancelled" (which `app.workers.wait_for_complete()` raises); here that only
    means finished. A worker that failed still raises."""
    while running := [worker for worker in app.workers if not worker.is_finished]:
        outcomes = await asyncio.gather(*(worker.wait() for worker in running), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, WorkerCancelled):
                raise outcome

"""The build queue and its executors.

A trigger makes a WaitingItem (quiet period), which becomes Buildable (or Blocked while a
non-concurrent job is building), then an executor takes it: the item becomes a LeftItem whose
``executable`` is the new run, numbered only now. Duplicate triggers coalesce into the queued
item. Left items are forgotten 300 s after the build started. Maintenance is event-driven: every
change notifies one condition variable, so short quiet periods make fast tests.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from dindjobs.standin.api import Bean, Prop
from dindjobs.standin.runs import Cause, Run, cause_action, parameters_action

log = logging.getLogger("dindjobs.standin")

WAITING, BLOCKED, BUILDABLE, LEFT = "WaitingItem", "BlockedItem", "BuildableItem", "LeftItem"
LEFT_ITEM_TTL = 300.0


def now_ms() -> int:
    return int(time.time() * 1000)


def timespan(seconds: float) -> str:
    """Jenkins' short duration text: ``80 ms``, ``0.88 sec``, ``4.9 sec``, ``12 sec``, ``3 min 4 sec``."""
    if seconds < 0.1:
        return f"{max(0, int(seconds * 1000))} ms"
    if seconds < 1:
        return f"{int(seconds * 100) / 100:g} sec"
    if seconds < 10:
        return f"{int(seconds * 10) / 10:g} sec"
    if seconds < 60:
        return f"{int(seconds)} sec"
    return f"{int(seconds // 60)} min {int(seconds % 60)} sec"


class Item(Bean):
    """One queue item, in whichever state it is."""

    def __init__(self, id_: int, job: Any, causes: list[Cause], params: list[tuple[str, str, str]] | None,
                 due: float) -> None:
        self.id = id_
        self.job = job
        self.causes = causes
        self.params = params  # None: the job is not parameterized
        self.in_queue_since = now_ms()
        self.due = due  # epoch seconds
        self.state = WAITING
        self.why: str | None = None
        self.buildable_since: int | None = None
        self.cancelled = False
        self.executable: Run | None = None
        self.left_at: float | None = None

    @property
    def java_class(self) -> str:  # type: ignore[override]
        return f"hudson.model.Queue${self.state}"

    @property
    def url_path(self) -> str:
        return f"queue/item/{self.id}/"

    def props(self, ctx: Any) -> list[Prop]:
        actions: list[Any] = [cause_action(self.causes)]
        if self.params:
            actions.append(parameters_action(self.params))
        params = "".join(f"\n{n}={v}" for n, v, c in self.params or [] if not c.endswith("PasswordParameterValue"))
        props = [
            Prop("actions", actions),
            Prop("blocked", self.state == BLOCKED),
            Prop("buildable", self.state == BUILDABLE),
            Prop("id", self.id, 2),
            Prop("inQueueSince", self.in_queue_since),
            Prop("params", params),
            Prop("stuck", False),
            Prop("task", self.job),
            Prop("url", self.url_path, 2),
            Prop("why", self.why),
        ]
        if self.state == WAITING:
            props.append(Prop("timestamp", int(self.due * 1000)))
        elif self.state in (BLOCKED, BUILDABLE):
            props.append(Prop("buildableStartMilliseconds", self.buildable_since))
            if self.state == BUILDABLE:
                props.append(Prop("pending", False))
        else:
            props.append(Prop("cancelled", self.cancelled))
            props.append(Prop("executable", self.executable))
        return props


class QueueView(Bean):
    """``/queue/api/json``: waiting, then blocked, then buildable items."""

    java_class = "hudson.model.Queue"

    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    def props(self, ctx: Any) -> list[Prop]:
        order = {WAITING: 0, BLOCKED: 1, BUILDABLE: 2}
        items = sorted((i for i in self.queue.items.values() if ctx.can_read(i.job)),
                       key=lambda i: (order[i.state], i.id))
        return [Prop("discoverableItems", []), Prop("items", items, inline=True)]


class Queue:
    """Items, executors and the maintenance thread of one boot."""

    def __init__(self, model: Any, executors: int, quiet_period: float) -> None:
        self.model = model
        self.cond = threading.Condition(model.lock)
        self.executors = executors
        self.quiet_period = quiet_period
        self.items: dict[int, Item] = {}
        self.left: dict[int, Item] = {}
        self.active: dict[int, Run] = {}  # executor number -> run
        self.threads: list[threading.Thread] = []
        self.next_id = 1
        self.left_ttl = LEFT_ITEM_TTL
        self._stopping = False
        self._thread: threading.Thread | None = None

    # -- persistence (queue.json: the id counter and the items still waiting) ----------------
    @property
    def _path(self) -> Path:
        return self.model.home / "queue.json"

    def load(self) -> None:
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        self.next_id = int(data.get("nextId", 1))
        for entry in data.get("items", []):
            job = self.model.find_job(entry["job"])
            if job is None:
                continue
            params = [tuple(p) for p in entry["params"]] if entry.get("params") is not None else None
            item = Item(entry["id"], job, [Cause(u) for u in entry.get("causes", [])], params, entry["due"])
            self.items[item.id] = item
            job.queue_item = job.queue_item or item

    def save(self) -> None:
        data = {"nextId": self.next_id, "items": [
            {"id": i.id, "job": i.job.full_name, "causes": [c.user for c in i.causes],
             "params": i.params, "due": i.due} for i in self.items.values()]}
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, self._path)

    # -- operations (call with model.lock held) ----------------------------------------------
    def schedule(self, job: Any, cause: Cause, params: list[tuple[str, str, str]] | None,
                 delay: float | None = None) -> tuple[Item, bool]:
        """Queue a build; returns (item, created). A duplicate folds into the queued item."""
        quiet = delay if delay is not None else (
            job.settings.quiet_period if job.settings.quiet_period is not None else self.quiet_period)
        due = time.time() + quiet
        for item in self.items.values():
            if item.job is job and item.params == params:
                if all(c.user != cause.user for c in item.causes):
                    item.causes.append(cause)
                if item.state == WAITING and due < item.due:
                    item.due = due
                self.cond.notify_all()
                return item, False
        item = Item(self.next_id, job, [cause], params, due)
        self.next_id += 1
        self.items[item.id] = item
        self._refresh(job)
        self.save()
        self.cond.notify_all()
        return item, True

    def get(self, id_: int) -> Item | None:
        self._expire()
        return self.items.get(id_) or self.left.get(id_)

    def cancel(self, id_: int) -> bool:
        """Cancel a queued item; False if it is not in the queue (unknown or already left)."""
        item = self.items.pop(id_, None)
        if item is None:
            return False
        self._leave(item, cancelled=True)
        self.save()
        return True

    def cancel_job(self, job: Any) -> None:
        for item in [i for i in self.items.values() if i.job is job]:
            self.cancel(item.id)

    def _leave(self, item: Item, cancelled: bool = False, run: Run | None = None) -> None:
        item.state = LEFT
        item.why = None
        item.cancelled = cancelled
        item.executable = run
        item.left_at = time.time()
        self.items.pop(item.id, None)
        self.left[item.id] = item
        self._refresh(item.job)

    def _refresh(self, job: Any) -> None:
        queued = sorted((i for i in self.items.values() if i.job is job), key=lambda i: i.id)
        job.queue_item = queued[0] if queued else None

    def _expire(self) -> None:
        limit = time.time() - self.left_ttl
        for id_ in [i for i, item in self.left.items() if (item.left_at or 0) < limit]:
            del self.left[id_]

    # -- maintenance --------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="standin-queue", daemon=True)
        self._thread.start()

    def stop(self, abort_by: str = "SYSTEM", wait: float = 30.0) -> None:
        """Stop maintenance, abort running builds and wait for them to finish."""
        with self.cond:
            self._stopping = True
            for run in list(self.active.values()):
                run.abort(abort_by)
            self.save()
            self.cond.notify_all()
        deadline = time.monotonic() + wait
        for t in list(self.threads) + ([self._thread] if self._thread else []):
            t.join(max(0.0, deadline - time.monotonic()))

    def _loop(self) -> None:
        with self.cond:
            while not self._stopping:
                timeout = self._maintain()
                self.cond.wait(timeout)

    def _maintain(self) -> float | None:
        """One pass: move items along and start what can start; returns seconds to next event."""
        now = time.time()
        self._expire()
        next_due: float | None = None
        for item in sorted(self.items.values(), key=lambda i: i.id):
            if item.state == WAITING and item.due > now:
                item.why = f"In the quiet period. Expires in {timespan(item.due - now)}"
                next_due = item.due if next_due is None else min(next_due, item.due)
                continue
            if item.buildable_since is None:
                item.buildable_since = now_ms()
            blocker = self._blocker(item)
            if blocker is not None:
                item.state, item.why = BLOCKED, blocker
                continue
            item.state = BUILDABLE
            if self.model.quieting_down:
                item.why = "Jenkins is about to shut down"
                continue
            free = [n for n in range(1, self.executors + 1) if n not in self.active]
            if not free:
                item.why = "Waiting for next available executor"
                continue
            self._start(item, free[0])
        if next_due is not None:
            return max(0.01, next_due - now)
        # While an item waits (why shows a countdown), wake up now and then; otherwise sleep long.
        return 1.0 if self.items else (self.left_ttl if self.left else None)

    def _blocker(self, item: Item) -> str | None:
        job = item.job
        if job.settings.concurrent:
            return None
        running = job.running()
        if not running:
            return None
        last = max(r.number for r in running)
        est = job.estimated_duration()
        eta = f" (ETA: {timespan(est / 1000)})" if est > 0 else ""
        return f"Build #{last} is already in progress{eta}"

    def _start(self, item: Item, executor: int) -> None:
        job = item.job
        number = job.take_build_number()
        run = Run(job, number, item.id, list(item.causes), list(item.params or []))
        run.executor_number = executor - 1
        job.runs[number] = run
        self.active[executor] = run
        run.begin_log()
        self._leave(item, run=run)
        self.save()
        workspace = self.model.workspace_for(job)
        env = self.model.build_env(run, workspace)
        steps = list(job.settings.shell_steps)

        def body() -> None:
            try:
                run.execute(steps, env, workspace, self.model.lock,
                            post_production_delay=self.model.post_production_delay,
                            on_state=self._notify, release=self.model.post_production_release)
            except Exception:  # noqa: BLE001 - an executor must never die silently
                log.exception("build %s #%d crashed", job.full_name, number)
                with self.cond:
                    run.result, run.state = "FAILURE", "COMPLETED"
            finally:
                with self.cond:
                    self.active.pop(executor, None)
                    self.model.release_workspace(workspace)
                    self.cond.notify_all()

        thread = threading.Thread(target=body, name=f"standin-build-{job.full_name}-{number}", daemon=True)
        self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        thread.start()
        log.info("started %s #%d (queue item %d)", job.full_name, number, item.id)

    def _notify(self) -> None:
        with self.cond:
            self.cond.notify_all()

"""Run each target's work in a child process forked from this one.

Threads share one interpreter lock: three targets planned and applied in threads kept one core
busy and the others idle. After the shared render, :func:`run_each_forked` forks one child per
target; the rendered items are inherited by the fork, never pickled. A child never writes to
the terminal: it sends events over a pipe (:meth:`Relay.send`, its log records too) and asks
questions the same way (:meth:`Relay.ask`); this process hands each event to ``on_event`` in
the order the child sent it and answers the questions, so everything printed is printed here.

A child's result comes back pickled; a :class:`DindjobsError` comes back as the same type and
message; a child that dies (killed, crashed) is its target's error and the others go on.
Stopping: ``stop`` set here (SIGINT, SIGTERM) is passed to every child as SIGTERM, which sets
the child's own stop event, so requests in flight finish and the ledger is saved. A child
whose parent dies gets SIGTERM from the kernel (``PR_SET_PDEATHSIG``) and stops the same way.
"""

from __future__ import annotations

import copy
import ctypes
import gc
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from dindjobs.errors import DindjobsError
from dindjobs.targets import Each, Target

log = logging.getLogger(__name__)

T = TypeVar("T")

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
POLL = 0.1  # seconds between looks at ``stop`` while waiting for the children


def fork_available() -> bool:
    """True where targets can run in forked children (not on Windows)."""
    return "fork" in multiprocessing.get_all_start_methods()


class ParentGone(DindjobsError):
    """The process that started this child is gone; nothing more can be reported to it."""


def pack_error(exc: DindjobsError) -> tuple:
    """What rebuilds ``exc`` in another process: some error types take keyword-only arguments,
    so they are not made again by calling them (as unpickling would) but from their state."""
    state = {k: v for k, v in vars(exc).items() if _picklable(v)}
    return type(exc).__module__, type(exc).__qualname__, exc.args, state


def unpack_error(packed: tuple) -> DindjobsError:
    """The error :func:`pack_error` described: its own type when this process knows it."""
    module, qualname, args, state = packed
    cls: Any = sys.modules.get(module)
    for part in qualname.split("."):
        cls = getattr(cls, part, None)
    if not (isinstance(cls, type) and issubclass(cls, DindjobsError)):
        cls = DindjobsError
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    if not hasattr(error, "message"):  # a type of its own that sets none: say what it said
        DindjobsError.__init__(error, str(args[0]) if args else cls.__name__)
    return error


def _picklable(value: object) -> bool:
    try:
        pickle.dumps(value)
    except Exception:  # noqa: BLE001 - any value that does not pickle is left behind
        return False
    return True


class Relay:
    """The child's end of the pipe: events and questions to the parent, and the child's stop event."""

    def __init__(self, conn: multiprocessing.connection.Connection) -> None:
        self.conn = conn
        self.stop = threading.Event()
        self._sending = threading.Lock()  # items finish in several threads
        self.gone = False

    def send(self, *event: object) -> None:
        """One event for the parent's ``on_event``; once the parent is gone, none (and ``stop`` is set)."""
        with self._sending:
            self._send(("event", event))

    def ask(self, *event: object) -> Any:
        """``on_event``'s answer to ``event`` (a DindjobsError it raised is raised here).

        Raises :class:`ParentGone` when there is no parent left to answer."""
        with self._sending:  # one question at a time, and no event between it and its answer
            self._send(("ask", event))
            if self.gone:
                raise ParentGone("no answer: the dindjobs process that asked is gone")
            try:
                kind, value = self.conn.recv()
            except (EOFError, OSError):
                self._lost()
                raise ParentGone("no answer: the dindjobs process that asked is gone") from None
        if kind == "raise":
            raise unpack_error(value)
        return value

    def finish(self, kind: str, value: object) -> None:
        with self._sending:
            self._send((kind, value))

    def _send(self, message: tuple) -> None:
        if self.gone:
            return
        try:
            self.conn.send(message)
        except (OSError, EOFError):
            self._lost()

    def _lost(self) -> None:
        self.gone = True
        self.stop.set()


class _Forward(logging.Handler):
    """Sends the child's log records to the parent, whose handlers print them."""

    def __init__(self, relay: Relay) -> None:
        super().__init__()
        self.relay = relay

    def emit(self, record: logging.LogRecord) -> None:
        try:
            record = copy.copy(record)
            record.msg, record.args = record.getMessage(), None
            if record.exc_info:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
            self.relay.send("log", record)
        except Exception:  # noqa: BLE001 - logging's own way to report a record it could not handle
            self.handleError(record)


@dataclass
class _Child:
    target: Target
    process: Any  # multiprocessing's fork Process
    conn: multiprocessing.connection.Connection
    each: Each | None = None


def run_each_forked(
    targets: Sequence[Target],
    work: Callable[[Target, Relay], T],
    on_event: Callable[[Target, tuple], Any],
    stop: threading.Event,
) -> list[Each[T]]:
    """``work(target, relay)`` for every target at the same time, each in a child process.

    ``on_event(target, event)`` is called here for each event a child sends, in its order; its
    return value answers a :meth:`Relay.ask` (asked from a thread of its own, so the other
    children's events are still handled meanwhile). ``work`` must stop early once
    ``relay.stop`` is set. A DindjobsError stays its target's own, like :func:`run_each`.
    """
    context = multiprocessing.get_context("fork")
    children: list[_Child] = []
    # A child never runs this process's handlers: it is forked with the stop signals blocked
    # (and keeps them so; see _child_main).
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    # Everything alive now (the rendered items above all) goes out of the collector's reach in
    # the children: their collections then never walk those objects, nor touch their pages and
    # so copy them. A three-target no-op used 3 % less CPU. Only the children keep it frozen.
    gc.freeze()
    try:
        for target in targets:
            parent_end, child_end = context.Pipe()
            # Every parent end, its own too: a child's writes must fail once this process is gone.
            parent_ends = [*(c.conn for c in children), parent_end]
            process = context.Process(target=_child_main, name=f"dindjobs sync {target.name}",
                                      args=(target, work, child_end, os.getpid(), parent_ends, stop.is_set()))
            process.start()
            child_end.close()
            children.append(_Child(target, process, parent_end))
    finally:
        gc.unfreeze()
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    try:
        _serve(children, on_event, stop)
    finally:
        for child in children:  # only after an error here: each has finished otherwise
            child.conn.close()
            if child.process.is_alive():
                child.process.terminate()
        for child in children:
            child.process.join()
    return [child.each or Each(child.target, error=_died(child.process.exitcode)) for child in children]


def _serve(children: list[_Child], on_event: Callable[[Target, tuple], Any], stop: threading.Event) -> None:
    """Hand every child's events to ``on_event`` until each has closed its pipe."""
    open_ends = {child.conn: child for child in children}
    stopped = False
    while open_ends:
        if stop.is_set() and not stopped:
            stopped = True
            for child in open_ends.values():
                _signal(child, signal.SIGTERM)
        for conn in multiprocessing.connection.wait(list(open_ends), timeout=POLL):
            child = open_ends[conn]
            try:
                kind, value = conn.recv()
            except (EOFError, OSError):
                del open_ends[conn]
                child.process.join()
                continue
            if kind == "event" and value[0] == "log":
                logging.getLogger(value[1].name).handle(value[1])
            elif kind == "event":
                on_event(child.target, value)
            elif kind == "ask":
                threading.Thread(target=_answer, args=(child, on_event, value), daemon=True,
                                 name=f"ask {child.target.name}").start()
            elif kind == "done":
                child.each = Each(child.target, value=value)
            elif kind == "error":
                child.each = Each(child.target, error=unpack_error(value))
            else:  # "crash"
                child.each = Each(child.target, error=DindjobsError(f"its sync stopped unexpectedly: {value}"))


def _answer(child: _Child, on_event: Callable[[Target, tuple], Any], event: tuple) -> None:
    try:
        reply: tuple = ("value", on_event(child.target, event))
    except DindjobsError as exc:
        reply = ("raise", pack_error(exc))
    except Exception as exc:  # noqa: BLE001 - e.g. an aborted prompt: the child stops with nothing applied
        log.debug("no answer for target %s", child.target.name, exc_info=True)
        reply = ("raise", pack_error(DindjobsError(f"no answer ({type(exc).__name__})")))
    try:
        child.conn.send(reply)
    except OSError:
        pass  # the child is gone: _serve reports it


def _signal(child: _Child, number: int) -> None:
    try:
        os.kill(child.process.pid, number)
    except ProcessLookupError:
        pass


def _died(exitcode: int | None) -> DindjobsError:
    if exitcode is not None and exitcode < 0:
        how = f"killed by {signal.Signals(-exitcode).name}"
    else:
        how = f"exit status {exitcode}"
    return DindjobsError(f"its sync process ended before reporting ({how}); what it applied is in its ledger",
                         hint="run sync again to finish")


# --- in the child --------------------------------------------------------------------------------------


def _child_main(target: Target, work: Callable[[Target, Relay], Any], conn: multiprocessing.connection.Connection,
                parent_pid: int, parent_ends: list[multiprocessing.connection.Connection], stopped: bool) -> None:
    """The whole life of a child: it always ends here, in ``os._exit`` (never back in the caller's code)."""
    code = 1
    try:
        for end in parent_ends:
            end.close()
        relay = Relay(conn)
        if stopped:
            relay.stop.set()
        # The stop signals stay blocked in every thread and are taken by a thread of their own:
        # no handler interrupts the main thread while it holds the stop event's lock.
        threading.Thread(target=_stop_on_signals, args=(relay.stop,), name="stop signals", daemon=True).start()
        _die_with_parent(parent_pid, relay.stop)
        logging.getLogger().handlers = [_Forward(relay)]
        try:
            relay.finish("done", work(target, relay))
            code = 0
        except DindjobsError as exc:
            relay.finish("error", pack_error(exc))
            code = 0
        except BaseException as exc:  # noqa: BLE001 - the parent reports it as this target's failure
            log.debug("target %s failed", target.name, exc_info=True)
            relay.finish("crash", f"{type(exc).__name__}: {exc}")
        conn.close()
    finally:
        os._exit(code)


def _stop_on_signals(stop: threading.Event) -> None:
    while True:
        signal.sigwait(STOP_SIGNALS)
        stop.set()


def _die_with_parent(parent_pid: int, stop: threading.Event) -> None:
    """Ask the kernel for SIGTERM when the parent dies (Linux); a parent already gone stops us now."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        except (OSError, AttributeError):
            log.debug("prctl(PR_SET_PDEATHSIG) is not available")
    if os.getppid() != parent_pid:
        stop.set()

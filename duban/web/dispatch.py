"""Send at once what an action wrote to the ledger (a request to review, a decision, a fresh link).

The action already wrote its ledger items in its own transaction, so nothing is lost if this
never runs: the next sweep delivers them.  This only saves the wait: a background thread
gathers the people concerned for ``web_send_delay`` seconds (a burst of submissions becomes one
digest per reviewer), then assembles and delivers for just those people, the same steps as
the daily sweep (duban.sweep.digests, duban.sweep.delivery).
"""

from __future__ import annotations

import logging
import threading

from duban.sweep.sending import send_to

log = logging.getLogger("duban.web")


class BackgroundDelivery:
    """Gathers the people an action wrote to, then assembles and delivers for them in a background thread."""

    def __init__(self, rt, *, delay: float = 3.0, enabled: bool = True):
        self.rt = rt
        self.delay = delay
        self.enabled = enabled
        self._pending: set[int] = set()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stop = False
        self._busy = False
        self._hurry = False
        self.runs = 0
        self.errors: list[str] = []

    def notify(self, recipients: set[int] | list[int]) -> None:
        if not self.enabled or not recipients:
            return
        with self._cond:
            self._pending.update(recipients)
            if self._thread is None or not self._thread.is_alive():
                self._stop = False
                self._thread = threading.Thread(target=self._loop, name="duban-web-dispatch", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._stop)
                if self._stop and not self._pending:
                    return
            if self.delay:
                with self._cond:
                    self._cond.wait_for(lambda: self._stop or self._hurry, timeout=self.delay)
            with self._cond:
                batch, self._pending = sorted(self._pending), set()
                self._hurry = False
                self._busy = True
            try:
                self.send(batch)
            except Exception as err:  # noqa: BLE001 - the next sweep delivers what is left
                log.exception("immediate delivery failed; the next sweep will deliver")
                self.errors.append(f"{err.__class__.__name__}: {err}")
            finally:
                with self._cond:
                    self._busy = False
                    self.runs += 1
                    self._cond.notify_all()

    def send(self, recipients: list[int]) -> None:
        send_to(self.rt, recipients, today=self.rt.today())

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything notified so far has been handed to the channel (tests, shutdown)."""
        with self._cond:
            self._hurry = True
            self._cond.notify_all()
            return self._cond.wait_for(lambda: not self._pending and not self._busy, timeout=timeout)

    def stop(self, timeout: float = 30.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

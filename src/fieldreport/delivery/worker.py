"""The delivery worker: claims due deliveries, sends them, records every attempt.

Runs inside ``fieldreport serve`` (a :data:`~fieldreport.app.Service`) and standalone as
``fieldreport worker``; any number of workers may share a PostgreSQL database. Each claim is
leased; the worker renews the leases of what it is sending, so a worker that dies loses its
deliveries to another after ``delivery_lease``. Finished attempts are written in batches
(one transaction for everything that finished meanwhile, which also claims what is due next:
one batch writer job per turn of the loop), which keeps the database from being the
bottleneck. What happens after an attempt is decided by :mod:`.policy` (pure).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import secrets
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from fieldreport.delivery.breaker import CircuitBreakers
from fieldreport.delivery.bundle import ReportBundle
from fieldreport.delivery.dispatch import Dispatch, Queued
from fieldreport.delivery.links import link_key
from fieldreport.delivery.loader import bundle_for, bundle_now, prefetch_files
from fieldreport.delivery.notify import Listener
from fieldreport.delivery.policy import (
    DEFAULT_SCHEDULE,
    DELIVERED,
    MAX_ABANDONED_IN_A_ROW,
    Action,
    decide,
    random_source,
)
from fieldreport.delivery.signing import signed_link
from fieldreport.delivery.transports.base import SendResult
from fieldreport.delivery.transports.http import HttpTransport
from fieldreport.delivery.transports.registry import HTTP_SCHEMES, plugin_for
from fieldreport.delivery.urls import redact_url, scheme_of, scrub, url_secrets
from fieldreport.state import AppState
from fieldreport.storage.attempt_records import GIVE_BACK, Finish, Finished, record_finished
from fieldreport.storage.deliveries import extend_leases, release
from fieldreport.storage.destinations import Destination
from fieldreport.storage.outbox import Claim, ClaimRequest, Turn, claim_and_load, record_and_claim
from fieldreport.storage.reports import Report
from fieldreport.storage.schema.base import utcnow

log = logging.getLogger(__name__)
_DELIVERED = Action.DELIVERED.value
BATCH_WINDOW = 0.005  # seconds
PREFETCH = 2


def worker_name() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


async def render_pdf_async(bundle: ReportBundle) -> bytes:
    from fieldreport.delivery.render.pdf import render_pdf

    return await asyncio.to_thread(render_pdf, bundle)


class Sender:
    """Sends one bundle to one destination, whatever its transport."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.allow_private = state.settings.allow_private_destinations
        self.http = HttpTransport(allow_private=self.allow_private)

    def send(self, dest: Destination, bundle: ReportBundle) -> Awaitable[SendResult]:
        """The send, to await. A plain function: a multipart or plain HTTP push is the HTTP
        transport's coroutine itself, without one more coroutine around it per delivery."""
        if dest.format not in ("xml", "json") and scheme_of(dest.url) in HTTP_SCHEMES:
            return self.http.send(dest, bundle)
        return self._send(dest, bundle)

    async def _send(self, dest: Destination, bundle: ReportBundle) -> SendResult:
        scheme = scheme_of(dest.url)
        if scheme in HTTP_SCHEMES:
            if dest.format == "xml" and bundle.pdf is None:
                bundle = dataclasses.replace(bundle, pdf=await render_pdf_async(bundle))
            if dest.format == "json":
                key = await link_key(self.state)
                ttl = self.state.settings.delivery_link_ttl
                expires = int(time.time() + ttl)
                base = self.state.public_url

                def link(name: str) -> str:
                    return signed_link(base, key, bundle.reportid, name, expires)

                expires_at = datetime.fromtimestamp(expires, tz=utcnow().tzinfo)
                return await self.http.send(dest, bundle, link=link, expires_at=expires_at)
            return await self.http.send(dest, bundle)
        module = plugin_for(scheme)
        if bundle.pdf is None:
            bundle = dataclasses.replace(bundle, pdf=await render_pdf_async(bundle))
        result: SendResult = await module.send(
            dest.url,
            bundle,
            token=dest.token,
            timeout=dest.timeout,
            allow_private=self.allow_private,
        )
        return result

    async def close(self) -> None:
        await self.http.close()


class Worker:
    def __init__(
        self,
        state: AppState,
        *,
        name: str | None = None,
        now: Callable[[], datetime] | None = None,
        rand: Callable[[], float] | None = None,
        breakers: CircuitBreakers | None = None,
    ) -> None:
        s = state.settings
        self.state = state
        self.name = name or worker_name()
        self.now = now or state.clock
        self.rand = rand or random_source()
        self.breakers = breakers or CircuitBreakers()
        self._concurrency = s.delivery_concurrency
        self.lease = s.delivery_lease
        self.poll = s.delivery_poll_interval
        self.sender = Sender(state)
        # Claimed and not finished yet; the claims wait there for one of at most
        # ``concurrency`` lanes (see :meth:`_lane`).
        self._dispatch = Dispatch(self.breakers, s.delivery_per_destination, PREFETCH)
        self._inflight = self._dispatch.inflight
        self._lanes: set[asyncio.Task[None]] = set()
        # While :meth:`run` runs, a lane with nothing to send waits here (a future each) for
        # the next claims instead of ending: see :meth:`_start_lanes`.
        self._keep_lanes = False
        self._idle_lanes: deque[asyncio.Future[None]] = deque()
        self._finished: list[Finish] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._drain_timeout = 30.0
        self.sent = 0
        # The server's public URL (ticket links in bundles), read from the settings once a
        # turn rather than for every delivery (see _take).
        self._public_url = state.public_url

    @property
    def concurrency(self) -> int:
        return self._concurrency

    @concurrency.setter
    def concurrency(self, value: int) -> None:
        """Change the number of simultaneous sends (before :meth:`run`)."""
        self._concurrency = value

    @property
    def per_destination(self) -> int:
        return self._dispatch.per_destination

    @per_destination.setter
    def per_destination(self, value: int) -> None:
        """Change the number of simultaneous sends to one destination (before :meth:`run`)."""
        self._dispatch.per_destination = value

    # --- claiming -----------------------------------------------------------------------
    def _claim_request(self) -> ClaimRequest | None:
        # Claim up to twice the limits: the extra ones wait in the queue for a lane, so the
        # pipe stays full while results are written and the next batch is claimed.
        free = PREFETCH * self.concurrency - len(self._inflight)
        if free <= 0 or self._stopping:
            return None
        return ClaimRequest(
            owner=self.name,
            now=self.now(),
            lease=self.lease,
            limit=free,
            room=self._dispatch.room(),
            default_room=self._dispatch.default_room,
            label=redact_url,
        )

    async def claim(self) -> list[Claim]:
        """Claim what is due (up to the room left) and queue it for the lanes."""
        request = self._claim_request()
        if request is None:
            return []
        # One batch writer job claims and reads the claimed reports in one transaction (on
        # SQLite one thread hop, shared with whatever ingest rows are queued meanwhile).
        claims, reports = await self.state.writer.submit(claim_and_load, request)
        await self._take(claims, reports)
        return claims

    async def turn(self) -> list[Claim]:
        """Record every finished attempt and claim what is due, in one batch writer job (one
        transaction): what :meth:`flush` then :meth:`claim` do, for one commit instead of two."""
        self._give_back()
        if not self._finished:
            return await self.claim()
        request = self._claim_request()
        batch, self._finished = self._finished, []
        try:
            claims, reports = await self.state.writer.submit(
                record_and_claim, Turn(Finished(batch, self.now()), request)
            )
        except Exception:
            self._finished[:0] = batch
            raise
        await self._take(claims, reports)
        return claims

    async def _take(self, claims: list[Claim], reports: dict[str, Report]) -> None:
        """Queue claimed deliveries for the lanes (their files read ahead), start lanes."""
        self._public_url = self.state.public_url
        files: dict[str, bytes] = {}
        if reports:
            try:
                files = await prefetch_files(self.state, reports.values())
            except Exception:  # each delivery reads its own files again (and records why not)
                log.warning(
                    "delivery worker: could not read ahead the batch's files", exc_info=True
                )
        add = self._dispatch.add
        for c in claims:
            report = reports.get(c.report_id)
            own: dict[str, bytes] = {}
            if report is not None:
                for f in report.files:  # a loop, not a comprehension (a function call each)
                    data = files.get(f.blob_key)
                    if data is not None:
                        own[f.blob_key] = data
            add(Queued(c, report, own))
        self._start_lanes()

    def _start_lanes(self, wanted: int | None = None) -> None:
        """A lane for each queued claim (or ``wanted`` lanes), up to ``concurrency`` lanes:
        idle lanes are woken first, new ones started for the rest (a lane that finds nothing
        it may send yet waits again while :meth:`run` runs, else ends at once).

        Lanes are kept between turns while the worker runs: started per turn, the lanes
        that found nothing to send (their destination at its limit) ended at once and were
        started again at the next turn, ~1.8 tasks per delivery on the delivery benchmark
        (a task, its coroutine and its first step each time)."""
        left = len(self._dispatch.queue) if wanted is None else wanted
        idle = self._idle_lanes
        while left > 0 and idle:
            waiter = idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
                left -= 1
        for _ in range(min(left, self.concurrency - len(self._lanes))):
            self._lanes.add(asyncio.create_task(self._lane(), name="delivery-lane"))

    def _release_idle_lanes(self) -> None:
        """Wake every idle lane to end (the worker stops keeping them)."""
        self._keep_lanes = False
        while self._idle_lanes:
            waiter = self._idle_lanes.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def _give_back(self) -> None:
        """Queued claims whose destination's circuit opened after they were claimed: given
        back in the next record (lease released, their attempt row removed: nothing was
        attempted), so that they wait in the database, not leased here, for the cooldown."""
        for claim, _, _ in self._dispatch.held_back():
            self._dispatch.done(claim.delivery_id, sent=False)
            self._finished.append(given_back(claim, self.name, self.now()))
        # A circuit half-open since the last turn lets its trial start: a lane to take it (the
        # lanes take what their destination's limit held back themselves, as their sends end).
        if self._dispatch.queue:
            self._start_lanes(1)

    async def _lane(self) -> None:
        """Send queued claims one after another until none is left; then, while :meth:`run`
        runs, wait idle for :meth:`_start_lanes` to wake it, else end. At most
        ``concurrency`` lanes run; a lane per send would cost a task, a semaphore wait and a
        done callback for each delivery (~1/6 of the worker's CPU on the delivery
        benchmark)."""
        dispatch = self._dispatch
        try:
            while True:
                item = dispatch.next()
                if item is None:
                    if not self._keep_lanes or self._stopping:
                        return
                    waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                    self._idle_lanes.append(waiter)
                    await waiter
                    if not self._keep_lanes or self._stopping:
                        return
                    continue
                claim = item.claim
                try:
                    await self._deliver_now(claim, item.report, item.files)
                except asyncio.CancelledError:
                    raise
                except Exception:  # a bug: its lease runs out and it is tried again
                    log.exception("delivery %s: unexpected error in the worker", claim.delivery_id)
                finally:
                    dispatch.done(claim.delivery_id, sent=True)
                    self._wake.set()
        finally:
            # Here, not in a done callback: a claim made before that callback ran would
            # count a lane that takes nothing more from the queue.
            task = asyncio.current_task()
            if task is not None:
                self._lanes.discard(task)

    # --- one attempt ----------------------------------------------------------------------
    async def _deliver_now(
        self, claim: Claim, report: Report | None, files: dict[str, bytes] | None = None
    ) -> None:
        started = self.now()
        dest = claim.destination
        if dest is None:
            self._record(
                claim,
                started,
                SendResult(ok=False, duration_ms=0, error="destination removed or disabled"),
                Action.GIVE_UP,
            )
            return
        if claim.abandoned >= MAX_ABANDONED_IN_A_ROW:
            # Not sent again: it may be what kills the workers (it would take every worker
            # down in turn, forever). Move on to the next destination, or dead.
            error = (
                f"given up: the worker stopped {claim.abandoned} times in a row while sending "
                "this report here (lease expired each time)"
            )
            log.error("delivery %s to %s: %s", claim.delivery_id, redact_url(dest.url), error)
            self._record(claim, started, SendResult(ok=False, duration_ms=0, error=error),
                         Action.GIVE_UP)  # fmt: skip
            return
        try:
            if report is None:
                result = SendResult(ok=False, duration_ms=0, error="report deleted", permanent=True)
            else:
                bundle = bundle_now(
                    self.state, report, files, self._public_url
                ) or await bundle_for(self.state, report, files)
                result = await self.sender.send(dest, bundle)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            secret_parts = [dest.token, dest.secret, *url_secrets(dest.url)]
            message = scrub(f"internal error: {type(exc).__name__}: {exc}", secret_parts)
            # The message is scrubbed of the destination's secrets; the traceback (which may
            # quote them) only at debug level.
            log.error("delivery %s: %s", claim.delivery_id, message)
            log.debug("delivery %s: traceback", claim.delivery_id, exc_info=True)
            result = SendResult(
                ok=False,
                duration_ms=int((self.now() - started).total_seconds() * 1000),
                error=message,
            )
        self.breakers.record(dest.id, result.ok)
        if result.ok:  # what decide() answers, without reading the clock again
            self._record(claim, started, result, Action.DELIVERED, DELIVERED)
            return
        decision = decide(
            result,
            attempts=claim.attempts + 1,
            schedule=dest.retry_schedule or DEFAULT_SCHEDULE,
            now=self.now(),
            rand=self.rand,
        )
        if not result.ok:
            log.info(
                "delivery %s to %s failed: %s (%s)",
                claim.delivery_id,
                redact_url(dest.url),
                result.error,
                decision.reason,
            )
        self._record(claim, started, result, decision.action, decision)

    def _record(
        self,
        claim: Claim,
        started: datetime,
        result: SendResult,
        action: Action,
        decision: object | None = None,
    ) -> None:
        if decision is DELIVERED:  # every success: the shared decision's values
            # (an enum's .value is two Python calls: its descriptor and the property)
            value, next_at, disable, reason = _DELIVERED, None, False, DELIVERED.reason
        else:
            value = action.value
            next_at = getattr(decision, "next_attempt_at", None)
            disable = bool(getattr(decision, "disable_destination", False))
            reason = str(getattr(decision, "reason", ""))
        # Positional (the fields' order): keyword arguments cost more for each delivery.
        finish = Finish(claim.delivery_id, claim.attempt_id, self.name, started,
                        result.duration_ms, result.status_code, result.response_excerpt,
                        result.error, value, next_at, disable, reason)  # fmt: skip
        self._finished.append(finish)
        self.sent += 1
        # The lane that sent it wakes the loop (_lane), once its send is counted done.

    async def flush(self) -> int:
        """Write every finished attempt in one transaction (a batch writer job)."""
        self._give_back()
        if not self._finished:
            return 0
        batch, self._finished = self._finished, []
        try:
            await self.state.writer.submit(record_finished, Finished(batch, self.now()))
        except Exception:
            self._finished[:0] = batch
            raise
        return len(batch)

    async def _heartbeat(self) -> None:
        ids = list(self._inflight)
        if ids:
            async with self.state.db.write() as conn:
                until = self.now() + timedelta(seconds=self.lease)
                await extend_leases(conn, self.name, ids, until)

    # --- loops ------------------------------------------------------------------------------
    async def run_until_idle(self, *, max_rounds: int = 1000) -> int:
        """Claim and send until nothing is due (tests, ``delivery test``). Returns attempts."""
        total = 0
        for _ in range(max_rounds):
            claims = await self.claim()
            while self._lanes:
                await asyncio.wait(list(self._lanes))
            await self.flush()
            total += len(claims)
            if not claims:
                break
        return total

    async def run(self) -> None:
        """Until :meth:`request_stop`: claim what is due, send, flush, sleep when idle; then
        let in-flight sends finish (up to the drain timeout) and give back the rest."""
        listener = None
        if not self.state.db.is_sqlite:
            listener = Listener(self.state.db.url, self.state.delivery_wake)
            await listener.start()
        self._keep_lanes = True
        try:
            await self._loop()
        finally:
            self._release_idle_lanes()
            if listener is not None:
                await listener.close()
            await self._drain()

    async def _loop(self) -> None:
        last_beat = time.monotonic()
        state_wake = self.state.delivery_wake
        while not self._stopping:
            try:
                await self.turn()
            except Exception:
                log.exception("delivery worker: database error; retrying shortly")
                await asyncio.sleep(min(self.poll, 2.0))
                continue
            if time.monotonic() - last_beat > self.lease / 3:
                last_beat = time.monotonic()
                try:
                    await self._heartbeat()
                except Exception:
                    log.warning("delivery worker: could not renew leases", exc_info=True)
            self._wake.clear()
            if self._stopping:
                break
            if not self._finished:
                waiters: list[asyncio.Future[object]] = [
                    asyncio.ensure_future(self._wake.wait()),
                    asyncio.ensure_future(state_wake.wait()),
                ]
                await asyncio.wait(
                    waiters, timeout=min(self.poll, self.lease / 3), return_when="FIRST_COMPLETED"
                )
                for w in waiters:
                    w.cancel()
                state_wake.clear()
            if self._inflight and len(self._finished) < self.concurrency // 2:
                # Busy: let results and free slots gather for a moment, so that one
                # transaction records many attempts and claims many deliveries.
                await asyncio.sleep(BATCH_WINDOW)

    def request_stop(self, timeout: float = 30.0) -> None:
        """Stop claiming; :meth:`run` then drains for at most ``timeout`` seconds and returns."""
        self._stopping = True
        self._drain_timeout = timeout
        self._release_idle_lanes()
        self._wake.set()

    async def _drain(self) -> None:
        self._stopping = True
        self._release_idle_lanes()
        if self._lanes:
            await asyncio.wait(list(self._lanes), timeout=self._drain_timeout)
        self._dispatch.queue.clear()  # claimed and never started: given back below
        left = list(self._inflight)
        for lane in list(self._lanes):
            lane.cancel()
        try:
            await self.flush()
            if left:
                async with self.state.db.write() as conn:
                    await release(conn, self.name, left)
        except Exception:
            log.warning("delivery worker: could not record the last attempts", exc_info=True)
        await self.sender.close()


def given_back(claim: Claim, owner: str, now: datetime) -> Finish:
    """The record of a claim given back unattempted (see :meth:`Worker._give_back`)."""
    return Finish(claim.delivery_id, claim.attempt_id, owner, now, 0, None, "", None, GIVE_BACK)


def worker_service(
    **kwargs: object,
) -> Callable[[AppState], Awaitable[Callable[[], Awaitable[None]]]]:
    """The worker as a background :data:`~fieldreport.app.Service` of the server."""

    async def start(state: AppState) -> Callable[[], Awaitable[None]]:
        worker = Worker(state, **kwargs)  # type: ignore[arg-type]
        task = asyncio.create_task(worker.run(), name="delivery-worker")
        log.info("delivery worker %s started", worker.name)

        async def stop() -> None:
            worker.request_stop(timeout=min(state.settings.shutdown_timeout, 30.0))
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=60)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

        return stop

    return start

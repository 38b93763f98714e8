"""Self-registration: an agent, tool server or gateway keeps itself in the registry.

Register on start, heartbeat at a fraction of the TTL, register again when the
registry has forgotten the instance (a restart with an empty store, a
deregistration), ride out outages with backoff, deregister on the way out.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Self

import anyio
from anyio.abc import TaskGroup

from registry.client import Backoff, RegistryClient
from registry.errors import BackendUnavailable, NotFound, RegistryError
from registry.models import Health, Instance, Registration

__all__ = ["SelfRegistration"]

logger = logging.getLogger("meshgate.selfreg")

#: Heartbeats never come faster than this, whatever the TTL.
_MIN_INTERVAL_SECONDS = 0.05
_MAX_BACKOFF_SECONDS = 5.0


def _permanent(exc: RegistryError) -> bool:
    # Outages and internal errors pass; a refused registration (invalid,
    # unauthorized, owned by another key) will be refused again.
    return not isinstance(exc, BackendUnavailable) and type(exc) is not RegistryError


class SelfRegistration:
    """Keeps ``service/instance`` registered while it runs.

    Use ``async with SelfRegistration(...) as reg:`` (the loop runs in the
    background; entering does not wait for the registry) or ``await reg.run()``
    in a task of your own. :attr:`registered` is set after the first
    successful registration; :meth:`wait_registered` also reports a refusal.
    """

    def __init__(
        self,
        client: RegistryClient,
        service: str,
        instance: str,
        registration: Registration,
        *,
        heartbeat_fraction: float = 1 / 3,
        deregister_timeout: float = 2.0,
    ) -> None:
        if not 0 < heartbeat_fraction <= 1:
            raise ValueError("heartbeat_fraction must be in (0, 1]")
        self.client = client
        self.service = service
        self.instance = instance
        self.registration = registration
        self.interval = max(
            registration.check.ttl_seconds * heartbeat_fraction, _MIN_INTERVAL_SECONDS
        )
        self.deregister_timeout = deregister_timeout
        #: Set once the registry has accepted the registration.
        self.registered = anyio.Event()
        self._settled = anyio.Event()
        self._failure: RegistryError | None = None
        self._record: Instance | None = None
        self._status = Health.PASSING
        self._note = ""
        self._wake = anyio.Event()
        self._attempted = False
        self._tg: TaskGroup | None = None

    @property
    def record(self) -> Instance | None:
        """The registry's last answer about this instance, if any."""
        return self._record

    def set_status(self, status: Health, note: str = "") -> None:
        """Report the owner's health; it goes out with a heartbeat right away."""
        self._status, self._note = Health(status), note
        self._wake.set()

    async def wait_registered(self) -> Instance:
        """Wait for the first registration; raise the registry's refusal if it refused."""
        await self._settled.wait()
        if self._failure is not None:
            raise self._failure
        assert self._record is not None
        return self._record

    # -- running ------------------------------------------------------------

    async def run(self) -> None:
        """Register and heartbeat until cancelled, then deregister.

        A refusal of the first registration (invalid registration, bad key,
        name owned by another key) is raised; outages, and refusals after a
        first success, are retried forever.
        """
        try:
            await self._loop()
        finally:
            await self.deregister()

    async def __aenter__(self) -> Self:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._background, name=f"selfreg-{self.service}-{self.instance}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._tg is not None
        self._tg.cancel_scope.cancel()
        try:
            # Not the body's exception: the group would wrap it in an
            # ExceptionGroup; returning None lets it propagate unchanged.
            await self._tg.__aexit__(None, None, None)
        finally:
            self._tg = None
            await self.deregister()

    async def deregister(self) -> None:
        """Remove the instance, best effort and bounded; failures are logged."""
        if not self._attempted:
            return
        self._attempted = False
        # Shielded: this runs while the owner is being cancelled.
        with anyio.move_on_after(self.deregister_timeout, shield=True) as scope:
            try:
                await self.client.deregister(self.service, self.instance)
                logger.info("deregistered %s/%s", self.service, self.instance)
            except NotFound:
                logger.debug("%s/%s was already gone", self.service, self.instance)
            except RegistryError as exc:
                logger.warning(
                    "could not deregister %s/%s: %s", self.service, self.instance, exc.detail
                )
        if scope.cancelled_caught:
            logger.warning(
                "could not deregister %s/%s within %.1fs",
                self.service,
                self.instance,
                self.deregister_timeout,
            )

    async def _background(self) -> None:
        try:
            await self._loop()
        except RegistryError as exc:
            # Logged and reported through wait_registered(), never raised into
            # the owner's body: the service it registers may still be useful.
            logger.error(
                "registry refused %s/%s; giving up: %s", self.service, self.instance, exc.detail
            )

    async def _loop(self) -> None:
        # Retries never wait longer than a heartbeat interval: recovering at
        # the rate the owner agreed to heartbeat keeps health from lapsing.
        backoff = Backoff(cap=min(_MAX_BACKOFF_SECONDS, max(self.interval, 0.1)))
        known = False  # whether the registry holds this instance, as far as we know
        while True:
            if not known:
                try:
                    known = await self._register(quiet=backoff.failures > 0)
                except RegistryError as exc:
                    if not self.registered.is_set():
                        self._fail(exc)
                        raise
                    # Refused after having been accepted (say another key took
                    # the name while the registry was empty): that may pass.
                    if backoff.failures == 0:
                        logger.error(
                            "registry refused %s/%s again: %s",
                            self.service,
                            self.instance,
                            exc.detail,
                        )
                if not known:
                    await anyio.sleep(backoff.next_delay())
                    continue
            self._wake = anyio.Event()  # before the send: a set_status during it wakes us
            try:
                self._record = await self.client.heartbeat(
                    self.service, self.instance, self._status, self._note
                )
            except NotFound:
                logger.info("registry forgot %s/%s; registering again", self.service, self.instance)
                known = False
                backoff.reset()  # it answered: the outage, if any, is over
                continue
            except RegistryError as exc:
                if backoff.failures == 0:
                    logger.warning(
                        "heartbeat of %s/%s failed: %s", self.service, self.instance, exc.detail
                    )
                await anyio.sleep(backoff.next_delay())
                continue
            backoff.reset()
            with anyio.move_on_after(self.interval):
                await self._wake.wait()

    async def _register(self, *, quiet: bool) -> bool:
        """One attempt; True on success, False on an outage; raises a refusal."""
        self._attempted = True
        try:
            record, created = await self.client.register(
                self.service, self.instance, self.registration
            )
        except RegistryError as exc:
            if _permanent(exc):
                raise
            # One warning per outage, not one per retry.
            logger.log(
                logging.DEBUG if quiet else logging.WARNING,
                "cannot register %s/%s yet: %s",
                self.service,
                self.instance,
                exc.detail,
            )
            return False
        self._record = record
        logger.info(
            "%s %s/%s at %s",
            "registered" if created else "re-registered",
            self.service,
            self.instance,
            record.url,
        )
        self.registered.set()
        self._settled.set()
        return True

    def _fail(self, exc: RegistryError) -> None:
        self._failure = exc
        self._settled.set()

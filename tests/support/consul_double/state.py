"""The state of the Consul HTTP API double: catalog, checks, KV and the raft index.

Each behaviour follows a page of Consul's documentation, named where it is
implemented. One agent on one node (``double-node``) holds every service, as
``consul agent -dev`` does.
"""

from __future__ import annotations

import asyncio
import base64
import random
import time
from collections.abc import Callable
from typing import Any

from tests.support.consul_double.records import Check, KvEntry, Service, parse_duration

__all__ = ["ConsulState", "lower_keys"]


class ConsulState:
    """Catalog, checks and KV behind one raft index that only grows.

    Every write takes the next index and records it on the tables it touched
    (``services``, ``checks``, ``kvs``), per service name, and on the rows, so
    each endpoint can report the index its blocking query watches
    (https://developer.hashicorp.com/consul/api-docs/features/blocking).
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.index = 1
        self.tables = {"services": 1, "checks": 1, "kvs": 1}
        self.service_index: dict[str, int] = {}
        self.services: dict[str, Service] = {}
        self.checks: dict[str, Check] = {
            "serfHealth": Check(
                "serfHealth", "Serf Health Status", "", "", "serf", "passing",
                "Agent alive and reachable", 1, 1,
            )
        }  # fmt: skip
        self.kv: dict[str, KvEntry] = {}
        self.tombstones: dict[str, int] = {}
        self._changed = asyncio.Event()

    # -- the index ---------------------------------------------------------

    def bump(self, *tables: str, service: str | None = None) -> int:
        self.index += 1
        for table in tables:
            self.tables[table] = self.index
        if service is not None:
            self.service_index[service] = self.index
        self._changed.set()
        self._changed = asyncio.Event()
        return self.index

    async def changed(self) -> None:
        await self._changed.wait()

    def health_service_index(self, name: str) -> int:
        # A service that never existed reports the table index, which moves with
        # any registration: the docs warn an index may move without a change.
        return self.service_index.get(name, max(self.tables["services"], self.tables["checks"]))

    def kv_index(self, key: str, *, recurse: bool) -> int:
        if recurse:
            found = [e.modify_index for k, e in self.kv.items() if k.startswith(key)]
            found += [i for k, i in self.tombstones.items() if k.startswith(key)]
        else:
            entry = self.kv.get(key)
            found = [entry.modify_index] if entry else [self.tombstones.get(key, 0)]
        best = max(found, default=0)
        return best or self.tables["kvs"]

    # -- catalog -----------------------------------------------------------

    def register(self, body: dict[str, Any], *, replace_checks: bool) -> None:
        """``PUT /v1/agent/service/register`` (https://developer.hashicorp.com/consul/api-docs/agent/service#register-service)."""
        name = str(body["name"])
        sid = str(body.get("id") or name)
        previous = self.services.get(sid)
        index = self.bump("services", "checks", service=name)
        self.services[sid] = Service(
            sid,
            name,
            [str(t) for t in body.get("tags") or []],
            {str(k): str(v) for k, v in (body.get("meta") or {}).items()},
            str(body.get("address") or ""),
            int(body.get("port") or 0),
            previous.create_index if previous else index,
            index,
        )
        definitions = list(body.get("checks") or [])
        if body.get("check"):
            definitions.insert(0, body["check"])
        wanted = set()
        for n, definition in enumerate(definitions, start=1):
            check = self._check(sid, name, lower_keys(definition), n, len(definitions), index)
            old = self.checks.get(check.id)
            if old is not None:
                check.create_index = old.create_index
            self.checks[check.id] = check
            wanted.add(check.id)
        if replace_checks or previous is None:
            for cid in [c.id for c in self.checks.values() if c.service_id == sid]:
                if cid not in wanted:
                    del self.checks[cid]

    def _check(
        self, sid: str, name: str, spec: dict[str, Any], n: int, count: int, index: int
    ) -> Check:
        # Check fields: https://developer.hashicorp.com/consul/api-docs/agent/check#json-request-body-schema
        default_id = f"service:{sid}" if count == 1 else f"service:{sid}:{n}"
        cid = str(spec.get("checkid") or spec.get("id") or default_id)
        status = str(spec.get("status") or "critical")  # checks start critical unless told
        now = self.clock()
        after = spec.get("deregistercriticalserviceafter")
        check = Check(
            cid,
            str(spec.get("name") or f"Service '{name}' check"),
            sid,
            name,
            "ttl" if spec.get("ttl") else "http",
            status,
            "",
            index,
            index,
            deregister_after=parse_duration(str(after)) if after else None,
            critical_since=now if status == "critical" else None,
        )
        if spec.get("ttl"):
            check.ttl = parse_duration(str(spec["ttl"]))
            check.deadline = now + check.ttl
        elif spec.get("http"):
            check.http = {
                "url": str(spec["http"]),
                "method": str(spec.get("method") or "GET"),
                "header": spec.get("header") or {},
                "body": str(spec.get("body") or ""),
            }
            check.interval = parse_duration(str(spec.get("interval") or "10s"))
            check.timeout = parse_duration(str(spec.get("timeout") or "10s"))
            # Consul staggers a check's first run randomly within its interval
            # (agent/checks/check.go, CheckHTTP.run: lib.RandomStagger(Interval)).
            check.next_run = now + random.uniform(0, check.interval)
            check.success_before_passing = int(spec.get("successbeforepassing") or 0)
            check.failures_before_critical = int(spec.get("failuresbeforecritical") or 0)
        else:
            raise ValueError("only TTL and HTTP checks are implemented by the double")
        return check

    def deregister(self, sid: str) -> bool:
        """``PUT /v1/agent/service/deregister/:id`` (https://developer.hashicorp.com/consul/api-docs/agent/service#deregister-service)."""
        service = self.services.pop(sid, None)
        if service is None:
            return False
        for cid in [c.id for c in self.checks.values() if c.service_id == sid]:
            del self.checks[cid]
        self.bump("services", "checks", service=service.name)
        return True

    def set_check(self, check: Check, status: str, output: str) -> None:
        """Record a check result; only a change moves the index (agents sync changes)."""
        if (check.status, check.output) == (status, output):
            return
        if status == "critical" and check.status != "critical":
            check.critical_since = self.clock()
        elif status != "critical":
            check.critical_since = None
        check.status, check.output = status, output
        check.modify_index = self.bump("checks", service=check.service_name)

    # -- KV ----------------------------------------------------------------

    def kv_put(self, key: str, value: bytes, *, cas: int | None, flags: int) -> bool:
        """``PUT /v1/kv/:key`` with ``?cas`` (https://developer.hashicorp.com/consul/api-docs/kv#create-update-key)."""
        entry = self.kv.get(key)
        if cas is not None and cas != (entry.modify_index if entry else 0):
            return False  # cas=0 creates only; cas=N needs ModifyIndex N
        index = self.bump("kvs")
        self.kv[key] = KvEntry(value, flags, entry.create_index if entry else index, index)
        self.tombstones.pop(key, None)
        return True

    def kv_delete(self, key: str, *, recurse: bool, cas: int | None) -> bool:
        """``DELETE /v1/kv/:key`` (https://developer.hashicorp.com/consul/api-docs/kv#delete-key)."""
        keys = [k for k in self.kv if k.startswith(key)] if recurse else [key]
        if cas is not None and not recurse:
            entry = self.kv.get(key)
            if entry is None or entry.modify_index != cas:
                return False
        keys = [k for k in keys if k in self.kv]
        if not keys:
            return True
        index = self.bump("kvs")
        for k in keys:
            del self.kv[k]
            self.tombstones[k] = index  # deletions move prefix indexes too
        return True

    def kv_txn(self, ops: list[dict[str, Any]]) -> list[str]:
        """``PUT /v1/txn`` with KV operations, all applied at one index or none.

        https://developer.hashicorp.com/consul/api-docs/txn (verbs ``set``,
        ``cas``, ``delete``, ``delete-cas``); returns the errors that rolled it back.
        """
        errors = []
        for n, op in enumerate(ops):
            verb, key = op.get("Verb"), str(op.get("Key", ""))
            entry = self.kv.get(key)
            if verb not in ("set", "cas", "delete", "delete-cas"):
                errors.append(f"op {n}: unsupported verb {verb!r}")
            elif verb in ("cas", "delete-cas") and int(op.get("Index", 0)) != (
                entry.modify_index if entry else 0
            ):
                errors.append(f'op {n}: failed to {verb} key "{key}", index is stale')
        if errors:
            return errors
        index = self.bump("kvs")
        for op in ops:
            key = str(op["Key"])
            entry = self.kv.get(key)
            if op["Verb"] in ("set", "cas"):
                value = base64.b64decode(op.get("Value") or "")
                created = entry.create_index if entry else index
                self.kv[key] = KvEntry(value, int(op.get("Flags") or 0), created, index)
                self.tombstones.pop(key, None)
            elif entry is not None:
                del self.kv[key]
                self.tombstones[key] = index
        return []

    # -- time: TTLs, HTTP checks, the reaper --------------------------------

    def expire(self) -> list[Check]:
        """Expire TTLs and return the HTTP checks that are due to run.

        TTL: https://developer.hashicorp.com/consul/docs/services/usage/checks#ttl-checks
        (no update within the TTL turns the check critical, output "TTL expired").
        """
        now = self.clock()
        due = []
        for check in list(self.checks.values()):
            if check.type == "ttl" and check.deadline <= now and check.status != "critical":
                self.set_check(check, "critical", "TTL expired")
            elif check.type == "http" and check.next_run <= now:
                check.next_run = now + check.interval
                due.append(check)
        return due

    def reap(self, minimum: float) -> list[str]:
        """Deregister services with a check critical longer than its limit.

        https://developer.hashicorp.com/consul/api-docs/agent/check#deregistercriticalserviceafter
        (Consul enforces at least one minute and reaps every 30 s; ``minimum``
        is that floor, lowered by tests).
        """
        now = self.clock()
        doomed = {
            c.service_id
            for c in self.checks.values()
            if c.deregister_after is not None
            and c.critical_since is not None
            and now - c.critical_since >= max(c.deregister_after, minimum)
        }
        return [sid for sid in doomed if self.deregister(sid)]

    def record_http(self, check: Check, status: str, output: str) -> None:
        """One HTTP check result, through its thresholds.

        https://developer.hashicorp.com/consul/docs/services/usage/checks#success-failures-before-passing-critical
        """
        if self.checks.get(check.id) is not check:
            return  # deregistered while it ran
        if status == "passing":
            check.successes, check.failures = check.successes + 1, 0
            if check.successes < check.success_before_passing and check.status != "passing":
                status = check.status
        else:
            check.failures, check.successes = check.failures + 1, 0
            if check.failures < check.failures_before_critical and check.status == "passing":
                status = check.status
        self.set_check(check, status, output)

    def service_entries(self, name: str) -> list[tuple[Service, list[Check]]]:
        serf = self.checks["serfHealth"]
        found = [s for s in self.services.values() if s.name == name]
        return [
            (s, [serf, *(c for c in self.checks.values() if c.service_id == s.id)])
            for s in sorted(found, key=lambda s: s.id)
        ]


def lower_keys(spec: dict[str, Any]) -> dict[str, Any]:
    # Consul decodes request bodies case-insensitively (py-consul sends "name", curl "Name").
    return {str(k).lower(): v for k, v in spec.items()}

"""Records of the Consul double: services, checks, KV entries, as the API renders them."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["NODE", "Check", "KvEntry", "Service", "parse_duration"]

NODE = "double-node"

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """A Go duration (``"10s"``, ``"1m30s"``, ``"250ms"``) in seconds, as Consul reads them."""
    text = text.strip()
    if text in ("", "0"):
        return 0.0
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"invalid duration {text!r}")
    return sum(float(n) * _UNITS[u] for n, u in parts)


@dataclass
class Service:
    id: str
    name: str
    tags: list[str]
    meta: dict[str, str]
    address: str
    port: int
    create_index: int
    modify_index: int

    def render(self) -> dict[str, Any]:
        return {
            "ID": self.id,
            "Service": self.name,
            "Tags": self.tags,
            "Meta": self.meta,
            "Address": self.address,
            "Port": self.port,
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index,
        }


@dataclass
class Check:
    id: str
    name: str
    service_id: str
    service_name: str
    type: str  # "ttl" | "http" | "serf"
    status: str
    output: str
    create_index: int
    modify_index: int
    ttl: float = 0.0
    deadline: float = 0.0
    http: dict[str, Any] = field(default_factory=dict)
    interval: float = 10.0
    timeout: float = 10.0
    next_run: float = 0.0
    success_before_passing: int = 0
    failures_before_critical: int = 0
    successes: int = 0
    failures: int = 0
    deregister_after: float | None = None
    critical_since: float | None = None

    def render(self) -> dict[str, Any]:
        return {
            "Node": NODE,
            "CheckID": self.id,
            "Name": self.name,
            "Status": self.status,
            "Notes": "",
            "Output": self.output,
            "ServiceID": self.service_id,
            "ServiceName": self.service_name,
            "Type": "" if self.type == "serf" else self.type,
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index,
        }


@dataclass
class KvEntry:
    value: bytes
    flags: int
    create_index: int
    modify_index: int

    def render(self, key: str) -> dict[str, Any]:
        return {
            "Key": key,
            "Value": base64.b64encode(self.value).decode() if self.value else None,
            "Flags": self.flags,
            "LockIndex": 0,
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index,
        }

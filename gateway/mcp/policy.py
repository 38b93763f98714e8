"""Which tools of ``/mcp`` each principal may see and call.

A :class:`ToolPolicy` holds one :class:`ToolRule` per principal id (``key:NAME``,
``key:<digest>``, ``jwt:<sub>``, ``anonymous``) and a default rule for every
other principal. The most specific rule applies whole: a principal with its
own rule is not also bound by the default. Within a rule, patterns are globs
(:func:`fnmatch.fnmatchcase`) on the public tool name, e.g. ``calc__*`` or
``*__delete_*``, and a deny wins over an allow. No policy allows everything.

The file form (TOML, see :func:`load_tool_policy`)::

    [default]                  # everyone without a rule of their own
    deny = ["*__delete_*"]

    [principals."key:ops"]     # the key given as --api-key ops=...
    allow = ["*"]

    [principals."jwt:alice"]   # a JWT whose sub is alice
    allow = ["calc__*", "knowledge__*"]
    deny = ["calc__divide"]
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import mcp_types as types

from gateway.security.settings import ANONYMOUS, Principal

__all__ = [
    "PolicyError",
    "ToolPolicy",
    "ToolRule",
    "load_tool_policy",
    "parse_tool_policy",
    "request_principal",
]

T = TypeVar("T", types.Tool, types.Prompt, str)
_NOTHING = re.compile(r"(?!)")


class PolicyError(ValueError):
    """A tool policy that cannot be read; the message says where and why."""


def _compile(patterns: tuple[str, ...]) -> re.Pattern[str]:
    if not patterns:
        return _NOTHING
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


@dataclass(frozen=True)
class ToolRule:
    """Allow and deny globs; a tool passes if some allow matches and no deny does."""

    allow: tuple[str, ...] = ("*",)
    deny: tuple[str, ...] = ()
    _allow: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _deny: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # One regex per list: a check is two matches however long the lists.
        object.__setattr__(self, "_allow", _compile(self.allow))
        object.__setattr__(self, "_deny", _compile(self.deny))

    def allows(self, public_name: str) -> bool:
        return self._allow.match(public_name) is not None and not self._deny.match(public_name)


@dataclass(frozen=True)
class ToolPolicy:
    """Tool rules per principal id, plus the rule for everyone else."""

    rules: Mapping[str, ToolRule] = field(default_factory=lambda: MappingProxyType({}))
    default: ToolRule = field(default_factory=ToolRule)

    def rule_for(self, principal: Principal | None) -> ToolRule:
        """The rule that applies to ``principal`` (None is the anonymous caller)."""
        return self.rules.get((principal or ANONYMOUS).id, self.default)

    def allows(self, principal: Principal | None, public_name: str) -> bool:
        """Whether ``principal`` may see and call the tool named ``public_name``."""
        return self.rule_for(principal).allows(public_name)

    def filter(self, principal: Principal | None, tools: Iterable[T]) -> list[T]:
        """The ``tools`` (``Tool``/``Prompt`` objects or names) ``principal`` may see, in order."""
        rule = self.rule_for(principal)
        return [t for t in tools if rule.allows(t if isinstance(t, str) else t.name)]


def request_principal(request: object) -> Principal | None:
    """The principal the gateway's auth middleware put on ``request`` (or its ASGI scope)."""
    scope = getattr(request, "scope", request)
    state = scope.get("state") if isinstance(scope, dict) else None
    principal = state.get("principal") if isinstance(state, dict) else None
    return principal if isinstance(principal, Principal) else None


def _patterns(table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...] | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(p, str) and p for p in value):
        raise PolicyError(f"{where}.{key} must be a list of non-empty glob strings")
    return tuple(value)


def _rule(table: Any, where: str) -> ToolRule:
    if not isinstance(table, dict):
        raise PolicyError(f"{where} must be a table with `allow` and/or `deny`")
    unknown = sorted(set(table) - {"allow", "deny"})
    if unknown:
        raise PolicyError(f"{where}: unknown keys {unknown} (only `allow` and `deny`)")
    allow = _patterns(table, "allow", where)
    deny = _patterns(table, "deny", where) or ()
    return ToolRule(allow=("*",) if allow is None else allow, deny=deny)


def parse_tool_policy(document: Mapping[str, Any]) -> ToolPolicy:
    """A policy from a parsed TOML document (``[default]``, ``[principals."ID"]``)."""
    unknown = sorted(set(document) - {"default", "principals"})
    if unknown:
        raise PolicyError(f"unknown top-level keys {unknown} (only `default` and `principals`)")
    default = _rule(document["default"], "default") if "default" in document else ToolRule()
    principals = document.get("principals", {})
    if not isinstance(principals, dict):
        raise PolicyError('principals must be tables: [principals."key:NAME"]')
    rules = {pid: _rule(table, f'principals."{pid}"') for pid, table in principals.items()}
    return ToolPolicy(rules=MappingProxyType(rules), default=default)


def load_tool_policy(path: str | Path) -> ToolPolicy:
    """Read a TOML policy file; raises :class:`PolicyError` with the reason."""
    try:
        with open(path, "rb") as file:
            document = tomllib.load(file)
    except OSError as exc:
        raise PolicyError(f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path} is not valid TOML: {exc}") from None
    try:
        return parse_tool_policy(document)
    except PolicyError as exc:
        raise PolicyError(f"{path}: {exc}") from None

"""Registration checks at the door.

Everything the registry stores is checked once, here: names are DNS labels,
URLs pass the SSRF policy, Agent Cards parse strictly as A2A 1.0 cards and tool
lists have the shape MCP clients expect, all within size limits. Problems are
collected so that one refusal names every bad field.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any

from a2a.types import AgentCard
from a2a.utils.errors import InvalidParamsError
from a2a.utils.proto_utils import validate_proto_required_fields
from google.protobuf.json_format import ParseDict, ParseError

from registry.errors import FieldError, InvalidRequest
from registry.models import NAME_PATTERN, Kind, Registration
from registry.ssrf import Resolver, UrlPolicy, check_url

__all__ = [
    "Limits",
    "name_errors",
    "parse_agent_card",
    "validate_name",
    "validate_registration",
]


@dataclass(frozen=True)
class Limits:
    """Size limits of a registration, in bytes of compact UTF-8 JSON."""

    max_body_bytes: int = 1_048_576  # enforced by the HTTP layer (413)
    max_card_bytes: int = 262_144
    max_tools_bytes: int = 524_288


_NAME = re.compile(NAME_PATTERN)
_TOOL_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")
# Fields of 0.3-era cards that 1.0 dropped or moved; a hint beats "unknown field".
_A2A_03_FIELDS = frozenset(
    (
        "url",
        "preferredTransport",
        "additionalInterfaces",
        "protocolVersion",
        "supportsAuthenticatedExtendedCard",
    )
)
_UNKNOWN_FIELD = re.compile(r'has no field named "([^"]+)" at "AgentCard([^"]*)"')
_AT_PATH = re.compile(r"\s*\bat AgentCard([.\[]\S*)?$")
_FAILED_FIELD = re.compile(r"Failed to parse (\w+) field: ")


def validate_name(value: str, field: str) -> str:
    """Return ``value`` if it is a DNS label, else raise InvalidRequest naming ``field``."""
    if not _NAME.fullmatch(value):
        message = (
            "must be a DNS label: 1-63 lowercase letters, digits or hyphens, "
            "starting and ending with a letter or digit"
        )
        raise InvalidRequest(f"{field}: {message}", errors=[FieldError(field, message)])
    return value


def name_errors(service: str, instance: str) -> list[FieldError]:
    """What is wrong with a service and an instance name (nothing when both are labels)."""
    errors: list[FieldError] = []
    for value, field in ((service, "service"), (instance, "instance")):
        try:
            validate_name(value, field)
        except InvalidRequest as exc:
            errors.extend(exc.errors)
    return errors


def _camel(path: str) -> str:
    """``supported_interfaces[0].protocol_binding`` -> ``supportedInterfaces[0].protocolBinding``.

    The SDK reports proto field names; callers wrote the card in JSON names.
    Map keys (in brackets) are left as they are.
    """
    return re.sub(
        r"\[[^\]]*\]|_([a-z0-9])",
        lambda m: m.group(1).upper() if m.group(1) else m.group(0),
        path,
    )


def _parse_error_field(exc: Exception) -> FieldError:
    text = str(exc).splitlines()[0] if str(exc) else "invalid value"
    if unknown := _UNKNOWN_FIELD.search(text):
        name, path = unknown.groups()
        message = f"unknown field {name!r}"
        if name in _A2A_03_FIELDS and not path:
            message += " (an A2A 0.3 field; 1.0 cards list endpoints in supportedInterfaces)"
        return FieldError(f"card{path}.{name}", message)
    # protobuf nests "Failed to parse X field: " per level and sometimes ends
    # with "at AgentCard.<path>"; the path is the better field name when given.
    message = _AT_PATH.sub("", _FAILED_FIELD.sub("", text)).strip().rstrip(".")
    at = _AT_PATH.search(text)
    if at and (path := (at.group(1) or "").rstrip(".")):
        return FieldError(f"card{path}", message)
    chain = _FAILED_FIELD.findall(text)
    return FieldError(".".join(["card", *chain]), message or "invalid value")


def parse_agent_card(card: dict[str, Any]) -> AgentCard:
    """Parse ``card`` strictly as an A2A 1.0 Agent Card, or raise InvalidRequest.

    Unknown fields are refused rather than ignored, so a 0.3-era card (with a
    top-level ``url``) is caught here instead of failing at a client.
    """
    summary = "card is not a valid A2A 1.0 Agent Card"
    parsed = AgentCard()
    try:
        ParseDict(card, parsed)
    except (ParseError, TypeError, ValueError) as exc:
        raise InvalidRequest(summary, errors=[_parse_error_field(exc)]) from None
    try:
        validate_proto_required_fields(parsed)
    except InvalidParamsError as exc:
        details = (exc.data or {}).get("errors") or []
        errors = [
            FieldError(f"card.{_camel(str(d.get('field', '')))}", str(d.get("message", "")))
            for d in details
            if isinstance(d, dict)
        ]
        raise InvalidRequest(summary, errors=errors or [FieldError("card", str(exc))]) from None
    return parsed


def _json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def _check_tools(tools: list[Any], limits: Limits) -> list[FieldError]:
    errors: list[FieldError] = []
    size = _json_size(tools)
    if size > limits.max_tools_bytes:
        return [FieldError("tools", f"tool list is {size} bytes, over {limits.max_tools_bytes}")]
    seen: set[str] = set()
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            errors.append(FieldError(f"tools[{i}]", "each tool must be an object"))
            continue
        name = tool.get("name")
        if not isinstance(name, str) or not _TOOL_NAME.fullmatch(name):
            errors.append(
                FieldError(f"tools[{i}].name", "must be a string of 1-128 of A-Z a-z 0-9 _ . -")
            )
        elif name in seen:
            errors.append(FieldError(f"tools[{i}].name", f"duplicate tool name {name!r}"))
        else:
            seen.add(name)
        if "inputSchema" in tool and not isinstance(tool["inputSchema"], dict):
            errors.append(FieldError(f"tools[{i}].inputSchema", "must be a JSON Schema object"))
    return errors


async def validate_registration(
    service: str,
    instance: str,
    reg: Registration,
    policy: UrlPolicy,
    *,
    limits: Limits = Limits(),
    resolver: Resolver | None = None,
) -> Registration:
    """Check a registration; return it with its URL normalised, or raise InvalidRequest.

    The card is stored as sent (a signed card must stay byte-for-byte
    verifiable); only ``url`` is rewritten to the form that was checked.
    """
    errors = name_errors(service, instance)
    urls: list[tuple[str, str]] = [(reg.url, "url")]
    if reg.kind is Kind.A2A_AGENT:
        if reg.card is None:
            errors.append(FieldError("card", "an a2a-agent registration requires its Agent Card"))
        elif (size := _json_size(reg.card)) > limits.max_card_bytes:
            errors.append(FieldError("card", f"card is {size} bytes, over {limits.max_card_bytes}"))
        else:
            try:
                parsed = parse_agent_card(reg.card)
            except InvalidRequest as exc:
                errors.extend(exc.errors)
            else:
                urls += [
                    (iface.url, f"card.supportedInterfaces[{i}].url")
                    for i, iface in enumerate(parsed.supported_interfaces)
                ]
    elif reg.card is not None:
        message = "an mcp-server registration has no Agent Card; send tools"
        errors.append(FieldError("card", message))
    # Agents may serve tools over MCP too (DESIGN.md §4), so both kinds may list them.
    if reg.tools is not None:
        errors.extend(_check_tools(reg.tools, limits))

    results = await asyncio.gather(
        *(check_url(url, policy, field=field, resolver=resolver) for url, field in urls),
        return_exceptions=True,
    )
    for result in results:
        if isinstance(result, InvalidRequest):
            errors.extend(result.errors)
        elif isinstance(result, BaseException):
            raise result
    if errors:
        fields = ", ".join(dict.fromkeys(e.field for e in errors))
        raise InvalidRequest(f"invalid registration ({fields})", errors=errors)
    return reg.model_copy(update={"url": results[0]})

"""The aggregate of the resources and prompts the mesh's tool servers offer.

Pure data: :func:`build_extras` turns what each service listed (:class:`Offer`)
into the lists ``/mcp`` answers and the map of who serves what. Prompts are
named ``{service}__{prompt}`` as tools are; resource URIs are kept, and when two
services list one URI (or templates that match it) the first by name serves it.
For the tool policy, a resource or template goes by ``{service}__{its name}``.
:mod:`~gateway.mcp.resources` fetches the offers.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import mcp_types as types
from pydantic import ValidationError

from gateway.mcp.catalog import public_name

__all__ = ["Extras", "Offer", "build_extras"]


@dataclass(frozen=True)
class Offer:
    """What one tool server offers besides tools (JSON objects as it listed them)."""

    resources: tuple[Mapping[str, Any], ...] = ()
    templates: tuple[Mapping[str, Any], ...] = ()
    prompts: tuple[Mapping[str, Any], ...] = ()


def _template_pattern(template: str) -> re.Pattern[str]:
    """RFC 6570 level 1 (``{name}`` is one path segment); ``{+name}`` may span several."""
    parts = re.split(r"(\{[^}]*\})", template)
    return re.compile(
        "".join(
            (".+" if p.startswith("{+") else "[^/]+") if p.startswith("{") else re.escape(p)
            for p in parts
        )
    )


def _fingerprint(items: Any) -> str:
    return hashlib.sha256(json.dumps(items, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Extras:
    """The aggregated lists and who serves what; one per set of offers."""

    resources: tuple[types.Resource, ...] = ()
    templates: tuple[types.ResourceTemplate, ...] = ()
    prompts: tuple[types.Prompt, ...] = ()
    owners: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: (the URIs it matches, its service, its policy name), in ``templates``' order.
    template_owners: tuple[tuple[re.Pattern[str], str, str], ...] = ()
    #: A listed resource's URI -> its policy name.
    resource_names: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: Public prompt name -> (service, the upstream's prompt name).
    prompt_owners: Mapping[str, tuple[str, str]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    resources_fingerprint: str = ""
    prompts_fingerprint: str = ""

    def owner_of(self, uri: str) -> tuple[str, str] | None:
        """The service that serves ``uri`` and the policy name it goes by: a listed
        resource's, else a matching template's."""
        owner = self.owners.get(uri)
        if owner is not None:
            return owner, self.resource_names[uri]
        return next(
            ((s, name) for pattern, s, name in self.template_owners if pattern.fullmatch(uri)),
            None,
        )


def build_extras(offers: Mapping[str, Offer]) -> Extras:
    """The aggregate of ``offers`` (by service), in a stable order."""
    resources: list[types.Resource] = []
    templates: list[types.ResourceTemplate] = []
    prompts: list[types.Prompt] = []
    owners: dict[str, str] = {}
    resource_names: dict[str, str] = {}
    template_owners: list[tuple[re.Pattern[str], str, str]] = []
    prompt_owners: dict[str, tuple[str, str]] = {}
    for service in sorted(offers):
        offer = offers[service]
        for spec in offer.resources:
            try:
                resource = types.Resource.model_validate(spec)
            except ValidationError:
                continue
            if owners.setdefault(resource.uri, service) == service:
                resource_names.setdefault(resource.uri, public_name(service, resource.name))
                resources.append(resource)
        for spec in offer.templates:
            try:
                template = types.ResourceTemplate.model_validate(spec)
            except ValidationError:
                continue
            pattern = _template_pattern(template.uri_template)
            template_owners.append((pattern, service, public_name(service, template.name)))
            templates.append(template)
        for spec in offer.prompts:
            name = spec.get("name")
            if not isinstance(name, str):
                continue
            public = public_name(service, name)
            try:
                prompt = types.Prompt.model_validate({**spec, "name": public})
            except ValidationError:
                continue
            if prompt_owners.setdefault(public, (service, name)) == (service, name):
                prompts.append(prompt)

    def dump(items: list[Any]) -> list[Any]:
        return [i.model_dump(mode="json", by_alias=True, exclude_none=True) for i in items]

    return Extras(
        resources=tuple(resources),
        templates=tuple(templates),
        prompts=tuple(prompts),
        owners=MappingProxyType(owners),
        template_owners=tuple(template_owners),
        resource_names=MappingProxyType(resource_names),
        prompt_owners=MappingProxyType(prompt_owners),
        resources_fingerprint=_fingerprint([dump(resources), dump(templates)]),
        prompts_fingerprint=_fingerprint(dump(prompts)),
    )

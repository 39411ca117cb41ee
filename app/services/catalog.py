"""The check catalog and compliance frameworks as read-only views: filtering, keyset pages and coverage."""

from __future__ import annotations

import base64
import binascii
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, TypeVar

from app.checks.base import Severity
from app.checks.catalog import CatalogEntry, Framework, catalog, frameworks
from app.errors import InvalidInput, NotFound
from app.pagination import PageParams
from app.schemas.checks import CheckRead, ControlRead, FrameworkRead, FrameworkSummary, RemediationRead

# Cursors are opaque: the last item's id, base64url-encoded. Both id spaces are plain ASCII.
T = TypeVar("T")
_CURSOR_ID = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


def _encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        value = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput.field("cursor", "Invalid cursor.", loc=["query", "cursor"]) from exc
    if not _CURSOR_ID.fullmatch(value):
        raise InvalidInput.field("cursor", "Invalid cursor.", loc=["query", "cursor"])
    return value


def _page(items: Sequence[T], key: Callable[[T], str], params: PageParams) -> tuple[list[T], str | None]:
    """Keyset page over items sorted by `key`: stable across deployments that add or remove items."""
    if params.cursor:
        after = _decode_cursor(params.cursor)
        items = [i for i in items if key(i) > after]
    page = list(items[: params.limit])
    next_cursor = _encode_cursor(key(page[-1])) if len(items) > params.limit else None
    return page, next_cursor


def check_read(entry: CatalogEntry) -> CheckRead:
    meta = entry.meta
    return CheckRead(
        id=meta.id, title=meta.title, service=meta.service, category=meta.category, severity=meta.severity,
        resource_type=meta.resource_type, kind=entry.spec.kind, description=meta.description, risk=meta.risk,
        remediation=RemediationRead(**meta.remediation.model_dump()),
        references=[str(url) for url in meta.references], compliance=meta.compliance,
        required_actions=sorted(entry.spec.requires),
    )


def _known_framework(framework_id: str, *, field: str) -> Framework:
    fw = frameworks().get(framework_id)
    if fw is None:
        known = ", ".join(sorted(frameworks()))
        raise InvalidInput.field(field, f"Unknown framework {framework_id!r}; known: {known}.",
                                 loc=["query", field])
    return fw


def list_checks(params: PageParams, *, service: str | None = None, category: str | None = None,
                severity: Severity | None = None, framework: str | None = None) -> tuple[list[CheckRead], str | None]:
    if framework is not None:
        _known_framework(framework, field="framework")
    entries = [
        e for e in catalog().values()
        if (service is None or e.meta.service == service)
        and (category is None or e.meta.category == category)
        and (severity is None or e.meta.severity == severity)
        and (framework is None or e.meta.compliance.get(framework))
    ]
    page, cursor = _page(entries, lambda e: e.meta.id, params)
    return [check_read(e) for e in page], cursor


def get_check(check_id: str) -> CheckRead:
    entry = catalog().get(check_id)
    if entry is None:
        raise NotFound(f"No check {check_id!r}.")
    return check_read(entry)


@cache
def served_by() -> dict[tuple[str, str], tuple[str, ...]]:
    """(framework id, control id) -> ids of the checks that serve it, from the checks' metadata."""
    index: dict[tuple[str, str], list[str]] = defaultdict(list)
    for check_id, entry in catalog().items():
        for framework_id, control_ids in entry.meta.compliance.items():
            for control_id in control_ids:
                index[(framework_id, control_id)].append(check_id)
    return {k: tuple(sorted(v)) for k, v in index.items()}


def _summary_fields(fw: Framework) -> dict[str, Any]:
    index = served_by()
    covered = [c for c in fw.controls if index.get((fw.id, c.id))]
    return {
        "id": fw.id, "name": fw.name, "version": fw.version, "description": fw.description,
        "control_count": len(fw.controls), "automated_count": sum(c.automated for c in fw.controls),
        "covered_count": len(covered), "automated_covered_count": sum(c.automated for c in covered),
    }


def list_frameworks(params: PageParams) -> tuple[list[FrameworkSummary], str | None]:
    page, cursor = _page(sorted(frameworks().values(), key=lambda f: f.id), lambda f: f.id, params)
    return [FrameworkSummary(**_summary_fields(fw)) for fw in page], cursor


def get_framework(framework_id: str) -> FrameworkRead:
    fw = frameworks().get(framework_id)
    if fw is None:
        raise NotFound(f"No framework {framework_id!r}.")
    index = served_by()
    controls = [ControlRead(id=c.id, title=c.title, section=c.section, automated=c.automated, note=c.note,
                            check_ids=list(index.get((fw.id, c.id), ()))) for c in fw.controls]
    return FrameworkRead(**_summary_fields(fw), controls=controls)

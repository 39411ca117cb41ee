"""Reading resource policies (bucket, topic, queue, key, secret, file system) out of API answers.

AWS returns policies as JSON text. A document we cannot read is recorded as a collection error for that
resource, so the checks that judge the policy report ERROR instead of treating it as "no policy".
"""

from __future__ import annotations

import json
from typing import Any

from app.scanners.base import CollectionError, CollectorContext


def load_policy(ctx: CollectorContext, text: Any, *, action: str, resource_id: str,
                region: str | None = None) -> dict[str, Any] | None:
    """The parsed policy, None when there is none; an unreadable document becomes a collection error."""
    if text is None or text == "":
        return None
    if isinstance(text, dict):
        return text
    try:
        document = json.loads(text)
    except (TypeError, ValueError):
        document = None
    if isinstance(document, dict):
        return document
    ctx.scan.inventory.record_error(CollectionError(
        service=ctx.collector.service, action=action, region=region or ctx.region, resource_id=resource_id,
        code="UnreadablePolicy", message="the resource policy returned by AWS is not a JSON object"))
    return None

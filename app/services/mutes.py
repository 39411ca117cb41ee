"""Mute rules: create, revise, unmute and expire them, and keep each finding's `mute_rule_id`/`muted_until` in step.

A finding is muted by at most one rule. Where several live rules match it, the one kept is the rule without expiry,
else the one that expires last, then the oldest: the finding stays muted as long as any rule covers it, and the
choice does not depend on query order. Reads compare `muted_until` with the clock, so a mute ends exactly on time;
the expiry job then records the end and relinks the findings (to another rule that still covers them, if any).
"""

from __future__ import annotations

import fnmatch
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import and_, func, or_, select
from sqlalchemy import update as sql_update
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, InvalidInput
from app.models import AwsAccount, Finding, MuteRule, Workspace
from app.pagination import PageParams, paginate
from app.schemas.mutes import SELECTOR_FIELDS, MuteRuleCreate, MuteRuleState, MuteRuleStateFilter, MuteRuleUpdate
from app.services import audit
from app.services.findings import muted_clause
from app.services.scoping import get_scoped, get_scoped_or_404, scoped

if TYPE_CHECKING:
    from app.api.deps import Principal

log = structlog.get_logger(__name__)

CHUNK = 500                                  # ids per UPDATE: well under both drivers' bind-parameter limits
MAX_EXPIRY = timedelta(days=3 * 366)
SYSTEM = "system"
_BULK = {"synchronize_session": False}       # bulk updates touch rows this session never loaded
# Past this many live rules, candidate findings are not narrowed in SQL (the OR would grow unwieldy).
_MAX_NARROWING_RULES = 200
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}")
_WILDCARDS = frozenset("*?")


def _now(now: datetime | None = None) -> datetime:
    return (now or datetime.now(UTC)).astimezone(UTC)


def state_of(rule: MuteRule, now: datetime | None = None) -> MuteRuleState:
    if rule.ended_at is not None:
        return MuteRuleState(rule.end_reason or MuteRuleState.unmuted)
    if rule.expires_at is not None and rule.expires_at <= _now(now):
        return MuteRuleState.expired
    return MuteRuleState.active


def _live(now: datetime):
    return and_(MuteRule.ended_at.is_(None), or_(MuteRule.expires_at.is_(None), MuteRule.expires_at > now))


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def _decision(rule: MuteRule) -> dict[str, Any]:
    """What the audit log keeps of a rule: the selectors as given, and the decision."""
    return {"selectors": dict(rule.selectors or {}), "reason": rule.reason, "owner": rule.owner,
            "expires_at": _iso(rule.expires_at)}


# --------------------------------------------------------------------------------------------------------------
# Matching


@dataclass(frozen=True, slots=True)
class _Matcher:
    rule_id: uuid.UUID
    expires_at: datetime | None
    finding_uid: str | None
    check_id: str | None
    aws_account_id: uuid.UUID | None
    # The rule's connection and every other connection of the workspace to the same AWS account: a reconnected
    # account's findings move to its new connection, and a mute of "this account" must follow them.
    account_ids: frozenset[uuid.UUID] | None
    region: str | None
    pattern: re.Pattern[str] | None
    tag_key: str | None
    tag_value: str | None

    @classmethod
    def of(cls, rule: MuteRule, numbers: dict[uuid.UUID, str | None] | None = None) -> _Matcher:
        """`numbers`: the workspace's connections and their AWS account numbers."""
        # fnmatch.translate without IGNORECASE: the same as fnmatchcase, compiled once per rule.
        pattern = re.compile(fnmatch.translate(rule.resource_pattern)) if rule.resource_pattern is not None else None
        account_ids = None
        if rule.aws_account_id is not None:
            number = (numbers or {}).get(rule.aws_account_id)
            account_ids = frozenset({rule.aws_account_id} | (
                {cid for cid, n in (numbers or {}).items() if n == number} if number else set()))
        return cls(rule.id, rule.expires_at, rule.finding_uid, rule.check_id, rule.aws_account_id, account_ids,
                   rule.region, pattern, rule.tag_key, rule.tag_value)

    def matches(self, f: Any) -> bool:
        if self.finding_uid is not None and f.uid != self.finding_uid:
            return False
        if self.check_id is not None and f.check_id != self.check_id:
            return False
        if self.account_ids is not None and f.aws_account_id not in self.account_ids:
            return False
        if self.region is not None and f.region != self.region:
            return False
        if self.pattern is not None and not (
                self.pattern.match(f.resource_id) or (f.resource_arn and self.pattern.match(f.resource_arn))):
            return False
        if self.tag_key is not None:
            tags = f.resource_tags or {}
            if self.tag_key not in tags or (self.tag_value is not None and tags[self.tag_key] != self.tag_value):
                return False
        return True

    def column_clause(self):
        """The part of the rule that SQL can test, or None when the rule has only patterns or tags."""
        parts = [column == value for column, value in (
            (Finding.uid, self.finding_uid), (Finding.check_id, self.check_id),
            (Finding.region, self.region)) if value is not None]
        if self.account_ids is not None:
            parts.append(Finding.aws_account_id.in_(sorted(self.account_ids)))
        return and_(*parts) if parts else None


def _priority(rule: MuteRule) -> tuple[Any, ...]:
    """No expiry first, then the latest expiry, then the oldest rule (ids are time-ordered)."""
    if rule.expires_at is None:
        return (0, 0.0, rule.id)
    return (1, -rule.expires_at.timestamp(), rule.id)


async def apply_mutes(session: AsyncSession, workspace_id: uuid.UUID, *,
                      account_ids: Sequence[uuid.UUID] | None = None, now: datetime | None = None) -> int:
    """Recompute `mute_rule_id`/`muted_until` of the workspace's findings (only those of `account_ids` if given)
    from its live rules; return how many findings changed. Findings of every status and state are covered:
    muting a PASS or a resolved finding is harmless, and it is already right if it comes back."""
    now = _now(now)
    if account_ids is not None and not account_ids:
        return 0
    rules = sorted((await session.scalars(scoped(MuteRule, workspace_id).where(_live(now)))).all(), key=_priority)
    numbers: dict[uuid.UUID, str | None] = {}
    if any(r.aws_account_id is not None for r in rules):
        numbers = dict((await session.execute(scoped(AwsAccount, workspace_id).with_only_columns(
            AwsAccount.id, AwsAccount.aws_account_id))).tuples().all())
    matchers = [_Matcher.of(r, numbers) for r in rules]

    stmt = scoped(Finding, workspace_id).with_only_columns(
        Finding.id, Finding.uid, Finding.check_id, Finding.aws_account_id, Finding.region, Finding.resource_id,
        Finding.resource_arn, Finding.resource_tags, Finding.mute_rule_id, Finding.muted_until)
    if account_ids is not None:
        stmt = stmt.where(Finding.aws_account_id.in_(list(account_ids)))
    # Candidates: findings muted now (they may have to be unmuted) and those a rule's columns could match.
    clauses = [m.column_clause() for m in matchers]
    if len(matchers) <= _MAX_NARROWING_RULES and all(c is not None for c in clauses):
        stmt = stmt.where(or_(Finding.mute_rule_id.is_not(None), *clauses))
    changes: dict[tuple[uuid.UUID | None, datetime | None], list[uuid.UUID]] = defaultdict(list)
    for f in (await session.execute(stmt)).all():
        chosen = next((m for m in matchers if m.matches(f)), None)
        target = (chosen.rule_id, chosen.expires_at) if chosen is not None else (None, None)
        if (f.mute_rule_id, f.muted_until) != target:
            changes[target].append(f.id)
    changed = 0
    for (rule_id, until), ids in changes.items():
        for start in range(0, len(ids), CHUNK):
            # By primary key alone: the ids come from the workspace-scoped read above. With a workspace condition
            # PostgreSQL may scan the workspace's rows once per chunk when its statistics lag behind the table
            # (say, right after the first scan of a large account), which made 20k findings take seconds.
            await session.execute(
                sql_update(Finding).where(Finding.id.in_(ids[start:start + CHUNK]))
                .values(mute_rule_id=rule_id, muted_until=until), execution_options=_BULK)
        changed += len(ids)
    if changed:
        log.info("mutes.applied", workspace_id=str(workspace_id), changed=changed, rules=len(rules))
    return changed


async def matched_counts(session: AsyncSession, workspace_id: uuid.UUID, rule_ids: Iterable[uuid.UUID],
                         now: datetime | None = None) -> dict[uuid.UUID, int]:
    """Open findings each rule mutes now."""
    ids = list(rule_ids)
    if not ids:
        return {}
    rows = (await session.execute(
        scoped(Finding, workspace_id).with_only_columns(Finding.mute_rule_id, func.count())
        .where(Finding.mute_rule_id.in_(ids), Finding.resolved_at.is_(None), muted_clause(_now(now)))
        .group_by(Finding.mute_rule_id))).tuples().all()
    counts = dict.fromkeys(ids, 0)
    counts.update(rows)
    return counts


# --------------------------------------------------------------------------------------------------------------
# Rules


async def _serialize_rule_changes(session: AsyncSession, workspace_id: uuid.UUID) -> None:
    """Rule changes of one workspace take turns, so each one's re-apply sees the rules the others committed
    (otherwise two rules made at once could each link a shared finding without seeing the other). A no-key lock
    on the workspace row: it does not hold up inserts that reference the workspace. Taken before any rule lock,
    in the same order everywhere. (SQLite already runs one writer at a time.)"""
    await session.execute(select(Workspace.id).where(Workspace.id == workspace_id).with_for_update(key_share=True))


async def reapply_after_scan(session: AsyncSession, workspace_id: uuid.UUID, account_id: uuid.UUID) -> int:
    """Apply the rules again once a scan's results are committed, taking turns with rule changes. The scan applies
    them inside its own transaction too (so its findings never show unmuted), but a rule committed while that
    transaction was open saw none of the scan's new findings and the scan did not see the rule: this closes that
    gap. Run in a transaction of its own, after the scan's has committed."""
    await _serialize_rule_changes(session, workspace_id)
    return await apply_mutes(session, workspace_id, account_ids=[account_id])


def _check_expiry(expires_at: datetime | None, now: datetime) -> datetime | None:
    if expires_at is None:
        return None
    try:
        moment = expires_at.astimezone(UTC)
    except OverflowError as exc:
        raise InvalidInput.field("expires_at", "The expiry is out of range.") from exc
    if moment <= now:
        raise InvalidInput.field("expires_at", "The expiry must be in the future.")
    if moment > now + MAX_EXPIRY:
        raise InvalidInput.field("expires_at", "The expiry can be at most 3 years ahead; review the decision "
                                               "then and renew it if it still holds.")
    return moment


async def create(session: AsyncSession, *, workspace_id: uuid.UUID, actor: Principal,
                 data: MuteRuleCreate) -> MuteRule:
    """Validate the selectors against the workspace, store the rule, mute what it matches, and audit it."""
    now = _now()
    given = data.model_dump(include=set(SELECTOR_FIELDS), exclude_none=True, mode="json")
    if not given:
        raise InvalidInput.field("body", "Give at least one selector: " + ", ".join(SELECTOR_FIELDS) + ".",
                                 loc=["body"])
    if data.tag_value is not None and data.tag_key is None:
        raise InvalidInput.field("tag_value", "`tag_value` needs a `tag_key`.")
    if data.region is not None and data.region != "global" and not _REGION.fullmatch(data.region):
        raise InvalidInput.field("region", "Not a region name: give a region code like `eu-west-1`, or `global`.")
    if data.resource_pattern is not None and set(given) == {"resource_pattern"} \
            and set(data.resource_pattern) <= _WILDCARDS:
        raise InvalidInput.field("resource_pattern", "A pattern of wildcards alone would mute every finding; "
                                                     "name part of the resource, or add another selector.")
    expires_at = _check_expiry(data.expires_at, now)
    finding_uid = None
    if data.finding_id is not None:
        # Unknown and other workspaces' findings get the same answer: the rule says nothing about either.
        finding = await get_scoped(session, Finding, workspace_id, data.finding_id)
        if finding is None:
            raise InvalidInput.field("finding_id", "No finding with this id in this workspace.")
        finding_uid = finding.uid
    if data.aws_account_id is not None:
        account = await get_scoped(session, AwsAccount, workspace_id, data.aws_account_id)
        if account is None:
            raise InvalidInput.field("aws_account_id", "No AWS account connection with this id in this workspace.")

    await _serialize_rule_changes(session, workspace_id)
    rule = MuteRule(
        workspace_id=workspace_id, finding_uid=finding_uid, check_id=data.check_id,
        aws_account_id=data.aws_account_id, region=data.region, resource_pattern=data.resource_pattern,
        tag_key=data.tag_key, tag_value=data.tag_value, reason=data.reason, owner=data.owner or actor.label,
        created_by=actor.label, expires_at=expires_at, selectors=given)
    session.add(rule)
    await session.flush()
    await apply_mutes(session, workspace_id, now=now)
    matched = (await matched_counts(session, workspace_id, [rule.id], now))[rule.id]
    await audit.record(session, workspace_id=workspace_id, actor=actor, action="mute_rule.created",
                       target_type="mute_rule", target_id=rule.id,
                       details={**_decision(rule), "matched_findings": matched})
    log.info("mute_rule.created", workspace_id=str(workspace_id), rule_id=str(rule.id), matched=matched)
    return rule


def _listed(stmt, state: MuteRuleStateFilter, now: datetime):
    if state == MuteRuleStateFilter.active:
        return stmt.where(_live(now))
    if state == MuteRuleStateFilter.ended:
        return stmt.where(~_live(now))
    return stmt


async def list_rules(session: AsyncSession, *, workspace_id: uuid.UUID, params: PageParams,
                     state: MuteRuleStateFilter = MuteRuleStateFilter.active, check_id: str | None = None,
                     aws_account_id: uuid.UUID | None = None) -> tuple[list[MuteRule], str | None]:
    """Newest first."""
    stmt = _listed(scoped(MuteRule, workspace_id), state, _now())
    if check_id is not None:
        stmt = stmt.where(MuteRule.check_id == check_id)
    if aws_account_id is not None:
        stmt = stmt.where(MuteRule.aws_account_id == aws_account_id)
    return await paginate(session, stmt, MuteRule.id, params, descending=True)


async def get_or_404(session: AsyncSession, *, workspace_id: uuid.UUID, rule_id: uuid.UUID,
                     for_update: bool = False) -> MuteRule:
    return await get_scoped_or_404(session, MuteRule, workspace_id, rule_id, what="Mute rule",
                                   for_update=for_update)


async def update(session: AsyncSession, *, workspace_id: uuid.UUID, actor: Principal, rule_id: uuid.UUID,
                 data: MuteRuleUpdate) -> MuteRule:
    """Revise the reason, the owner or the expiry of an active rule."""
    await _serialize_rule_changes(session, workspace_id)
    now = _now()
    rule = await get_or_404(session, workspace_id=workspace_id, rule_id=rule_id, for_update=True)
    state = state_of(rule, now)
    if state != MuteRuleState.active:
        raise Conflict(f"This mute rule has ended ({state.value}); make a new rule instead.")
    changes = data.model_dump(exclude_unset=True)
    for name in ("reason", "owner"):
        if name in changes and changes[name] is None:
            raise InvalidInput.field(name, f"A mute rule always has a {name}; it can be changed, not removed.")
    if "expires_at" in changes:
        changes["expires_at"] = _check_expiry(changes["expires_at"], now)
    changes = {k: v for k, v in changes.items() if getattr(rule, k) != v}
    if not changes:
        return rule
    before = {k: _iso(v) if k == "expires_at" else v for k, v in ((k, getattr(rule, k)) for k in changes)}
    for name, value in changes.items():
        setattr(rule, name, value)
    await session.flush()
    if "expires_at" in changes:
        # The findings carry the expiry, and a new expiry can change which rule mutes a finding.
        await apply_mutes(session, workspace_id, now=now)
    after = {k: _iso(v) if k == "expires_at" else v for k, v in changes.items()}
    await audit.record(session, workspace_id=workspace_id, actor=actor, action="mute_rule.updated",
                       target_type="mute_rule", target_id=rule.id,
                       details={**_decision(rule), "before": before, "after": after})
    return rule


async def delete(session: AsyncSession, *, workspace_id: uuid.UUID, actor: Principal,
                 rule_id: uuid.UUID) -> MuteRule:
    """Unmute: end the rule (the row stays, for the record) and show its findings again, unless another rule
    covers them. A rule that has already ended is left as it is."""
    await _serialize_rule_changes(session, workspace_id)
    now = _now()
    rule = await get_or_404(session, workspace_id=workspace_id, rule_id=rule_id, for_update=True)
    if state_of(rule, now) != MuteRuleState.active:
        return rule
    muted = (await matched_counts(session, workspace_id, [rule.id], now))[rule.id]
    rule.ended_at, rule.ended_by, rule.end_reason = now, actor.label, MuteRuleState.unmuted.value
    await session.flush()
    await apply_mutes(session, workspace_id, now=now)
    await audit.record(session, workspace_id=workspace_id, actor=actor, action="mute_rule.deleted",
                       target_type="mute_rule", target_id=rule.id,
                       details={**_decision(rule), "end_reason": rule.end_reason, "matched_findings": muted})
    log.info("mute_rule.unmuted", workspace_id=str(workspace_id), rule_id=str(rule.id), findings=muted)
    return rule


async def expire_due_rules(session: AsyncSession, now: datetime | None = None) -> int:
    """End every live rule whose expiry has passed (as of its expiry), audit each, and re-apply the mutes of the
    workspaces concerned. Returns how many rules ended. Concurrent runs take turns per workspace and re-read the
    rules once it is theirs, so no expiry is recorded twice."""
    now = _now(now)
    due = and_(MuteRule.ended_at.is_(None), MuteRule.expires_at.is_not(None), MuteRule.expires_at <= now)
    # A system sweep across workspaces; each workspace is then handled within its own scope.
    workspace_ids = sorted(set((await session.scalars(select(MuteRule.workspace_id).where(due))).all()))
    count = 0
    for workspace_id in workspace_ids:
        await _serialize_rule_changes(session, workspace_id)
        ended = list((await session.scalars(
            scoped(MuteRule, workspace_id).where(due).order_by(MuteRule.id).with_for_update())).all())
        if not ended:
            continue
        for rule in ended:
            rule.ended_at, rule.ended_by, rule.end_reason = rule.expires_at, SYSTEM, MuteRuleState.expired.value
        await session.flush()
        await apply_mutes(session, workspace_id, now=now)
        for rule in ended:
            await audit.record(session, workspace_id=workspace_id, actor=None, action="mute_rule.expired",
                               target_type="mute_rule", target_id=rule.id,
                               details={**_decision(rule), "end_reason": rule.end_reason})
        count += len(ended)
    if count:
        log.info("mute_rules.expired", count=count, workspaces=len(workspace_ids))
    return count

"""AWS Account settings: the alternate contacts AWS uses to reach the customer about security matters."""

from __future__ import annotations

from app.scanners.base import GLOBAL, Collector, CollectorContext, Resource, register


class AccountSecurityContact(Resource):
    """Whether the SECURITY alternate contact is set; the contact's personal details are not kept."""

    resource_type = "AwsAccount"
    configured: bool
    has_email: bool = False
    has_phone: bool = False


@register
class AccountAlternateContactCollector(Collector):
    name = "account_alternate_contacts"
    service = "account"
    scope = "global"
    actions = frozenset({"account:GetAlternateContact"})

    async def collect(self, ctx: CollectorContext) -> None:
        # ResourceNotFoundException is how the API says "no contact of this type": data, not an error.
        answer = await ctx.call("account", "GetAlternateContact", AlternateContactType="SECURITY",
                                ignore_codes=("ResourceNotFoundException",))
        contact = (answer or {}).get("AlternateContact") or {}
        ctx.add(AccountSecurityContact(
            region=GLOBAL, resource_id=ctx.account_id, arn=ctx.arn("iam", "root"),
            configured=bool(contact), has_email=bool(contact.get("EmailAddress")),
            has_phone=bool(contact.get("PhoneNumber"))))

"""One signed-in account per role, each in an organisation of its own, and a tender they can reach."""
from __future__ import annotations

from dataclasses import dataclass

from tests.helpers import Actor, bidder, staff
from tests.integration.expert_pool.conftest import (TenderInfo, add_expert, organisation, sign_in,
                                                    supervising_org, tender_with_lot)

ROLES = ("admin", "agent", "bidder", "expert", "supervisor")


@dataclass
class Accounts:
    actors: dict[str, Actor]
    tender: TenderInfo


async def accounts(client, sessions) -> Accounts:
    """admin, agent, bidder, expert and supervisor, signed in; the agent's tender is supervised by the
    supervisor's organisation."""
    agency = await organisation(sessions, "中山市模糊测试招标代理有限公司")
    agent = await staff(sessions, client, "agent", organisation_public_id=agency)
    tender = await tender_with_lot(sessions, agent)
    expert = await add_expert(sessions, employer=await organisation(sessions), account=True)
    actors = {
        "admin": await staff(sessions, client, "admin"),
        "agent": agent,
        "bidder": await bidder(client),
        "expert": await sign_in(client, expert.username),
        "supervisor": await staff(sessions, client, "supervisor",
                                  organisation_public_id=await supervising_org(sessions)),
    }
    return Accounts(actors, tender)

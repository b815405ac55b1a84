"""Demo venues: the seed case's two trading centres — the Guangdong provincial centre in Guangzhou and the
Zhongshan centre — each with a remote-evaluation room, its places (席位) and a camera position, made by the demo
admin through the venue service so that every one is on the ledger."""
from __future__ import annotations

import logging
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from core.identity_models import User
from core.principal import Principal
from evaluation import venues
from evaluation.models import Site

log = logging.getLogger(__name__)

DEMO_ADMIN = "admin"
# (name, region, address, [(room, [place labels], camera label)])
DEMO_SITES = [
    ("广东省公共资源交易中心", "440100", "广州市", [("远程异地评标室1", ["A-01", "A-02", "A-03"], "A-CAM"),
                                                 ("远程异地评标室2", ["C-01", "C-02", "C-03"], "C-CAM")]),
    ("中山市公共资源交易中心", "442000", "中山市", [("远程异地评标室", ["B-01", "B-02", "B-03", "B-04"], "B-CAM")]),
]


async def seed_demo(sessions: async_sessionmaker, console: Console, progress: Progress,
                    options: dict[str, Any]) -> None:
    """`bidroom demo seed`: the two Guangdong centres with rooms and places, unless venues exist already."""
    async with sessions() as session, session.begin():
        if (await session.execute(select(func.count()).select_from(Site))).scalar_one():
            console.print("venues already seeded")
            return
        user = (await session.execute(select(User).where(User.username == DEMO_ADMIN))).scalar_one_or_none()
        if user is None:
            console.print("no demo admin: venues not seeded")
            return
        admin = Principal(user_id=user.id, public_id=user.public_id, organisation_id=user.organisation_id,
                          roles=frozenset(user.roles))
        table = Table(title="venues · 评标场地")
        for column in ("site 交易中心", "region", "room 评标室", "places 席位"):
            table.add_column(column)
        task = progress.add_task("venues 场地", total=sum(len(rooms) for *_, rooms in DEMO_SITES))
        for name, region, address, rooms in DEMO_SITES:
            site = await venues.create_site(session, who=admin, name=name, region_code=region, address=address)
            for room_name, labels, camera in rooms:
                room = await venues.create_room(session, who=admin, site_public_id=site.public_id, name=room_name,
                                                capacity=len(labels) + 2)
                for label in labels:
                    await venues.create_place(session, who=admin, room_public_id=room.public_id, label=label)
                await venues.create_place(session, who=admin, room_public_id=room.public_id, label=camera,
                                          camera_position=True)
                table.add_row(f"{name} {site.public_id}", region, f"{room_name} {room.public_id}", ", ".join(labels))
                progress.advance(task)
    console.print(table)

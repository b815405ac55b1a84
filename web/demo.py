"""The demo data set: accounts for every role, then each domain's demo data (a login for every pool expert),
with progress bars."""
from __future__ import annotations

import logging

import pyotp
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import select, text

from core import identity_service
from core.identity_models import DemoMarker, User
from core.settings import Settings
from core.totp import TotpVault
from expert_pool.demo import username_pattern
from web.runtime import sessions_for

log = logging.getLogger(__name__)

DEMO_PASSWORD = "bidroom-demo-2026"
# fixed demo TOTP secrets so a demo user can add them to an authenticator app; never used outside the demo
# staff belong to organisations: the centre, an agency (招标代理机构) and a tenderer (招标人)
DEMO_ORGANISATIONS = {
    "centre": ("中山市公共资源交易中心", "12442000MB2C00001X", "centre"),
    "agency": ("广东中诚招标代理有限公司", "91442000MA4X00005X", "agency"),
    "tenderer": ("中山市人民医院", "12442000455870001X", "public_institution"),
}
DEMO_ACCOUNTS = [
    ("admin", "平台管理员 Admin", ["admin"], "JBSWY3DPEHPK3PXPADMIN234", "centre"),
    ("agent", "招标代理 王芳 Agent", ["agent"], "JBSWY3DPEHPK3PXPAGENT234", "agency"),
    ("supervisor", "监督员 陈刚 Supervisor", ["supervisor"], "JBSWY3DPEHPK3PXPSUPER234", "centre"),
    ("purchaser", "采购人 李明 Purchaser", ["purchaser"], None, "tenderer"),
]
DEMO_BIDDERS = [
    ("bidder1", "中山市恒信建设工程有限公司", "91442000MA4W00001X"),
    ("bidder2", "广州市粤华市政工程有限公司", "91440101MA5C00002X"),
    ("bidder3", "佛山市南方路桥集团有限公司", "91440600MA4U00003X"),
    ("bidder4", "珠海市海岸科技股份有限公司", "91440400MA5D00004X"),
]


def _valid_code(seed: str) -> str:
    from core.identity_rules import uscc_check_char
    return seed[:17] + uscc_check_char(seed[:17])


class DemoRefused(Exception):
    """The database holds data the demo did not make: seeding would mix well-known passwords into it."""


async def seed_demo(settings: Settings, *, console: Console, only_if_empty: bool, tenders: int = 40,
                    experts: int = 200, force: bool = False) -> None:
    """Seed the demo accounts and each domain's demo data.

    Demo accounts have a published password and fixed TOTP secrets, so the demo only seeds an empty database
    or one it seeded itself (the `demo_marker` row it writes); anything else is refused with DemoRefused unless
    `force` is given. With only_if_empty, a database that has any account is left alone."""
    vault = TotpVault.for_keys_dir(settings.keys_dir)
    async with sessions_for(settings) as sessions:
        async with sessions() as session, session.begin():
            has_users = (await session.execute(select(User.id).limit(1))).first() is not None
            if only_if_empty and has_users:
                console.print("demo data already present")
                return
            made_by_demo = (await session.execute(select(DemoMarker.id).limit(1))).first() is not None
            if has_users and not made_by_demo and not force:
                raise DemoRefused("this database has accounts that the demo did not create; demo seeding adds "
                                  "accounts with a published password. Use a new database, or --force")
        table = Table(title="demo accounts · 演示账号 (password 密码: " + DEMO_PASSWORD + ")")
        table.add_column("username")
        table.add_column("roles")
        table.add_column("TOTP secret")
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("accounts 账号", total=len(DEMO_ACCOUNTS) + len(DEMO_BIDDERS))
            async with sessions() as session, session.begin():
                organisations = {}
                for key, (org_name, code, kind) in DEMO_ORGANISATIONS.items():
                    org = await identity_service.create_organisation(
                        session, actor="system", name=org_name, social_credit_code=_valid_code(code), kind=kind,
                        region_code="442000")
                    organisations[key] = org.public_id
                for username, name, roles, secret, org_key in DEMO_ACCOUNTS:
                    user, _ = await identity_service.create_user(
                        session, actor="system", username=username, password=DEMO_PASSWORD, display_name=name,
                        roles=roles, organisation_public_id=organisations[org_key])
                    if secret:
                        user.totp_secret = vault.seal(secret, owner=user.public_id)
                    table.add_row(username, ",".join(roles), secret or "-")
                    progress.advance(task)
                for username, org_name, code in DEMO_BIDDERS:
                    await identity_service.register(
                        session, username=username, password=DEMO_PASSWORD, display_name=org_name,
                        role="bidder", org_name=org_name, social_credit_code=_valid_code(code))
                    table.add_row(username, "bidder", "-")
                    progress.advance(task)
                await session.execute(text("INSERT INTO demo_marker (id) VALUES (1) ON CONFLICT (id) DO NOTHING"))
        console.print(table)
        from core import domains
        # every pool expert gets a login with the demo password, so whoever a draw picks can answer
        # the settings: the evaluation demo seals, stores and opens bids, which needs the keys and the storage
        options = {"tenders": tenders, "experts": experts, "password": DEMO_PASSWORD, "settings": settings}
        for module in domains.load(domains.ROUTE_MODULES):
            hook = getattr(module, "seed_demo", None)
            if hook is not None:
                with Progress(console=console) as progress:
                    await hook(sessions, console, progress, options)
        if experts > 0:
            console.print(f"expert logins 专家账号: {username_pattern(experts)} (one per pool expert), "
                          f"password 密码 {DEMO_PASSWORD}")
        console.print("current one-time code for admin: " + pyotp.TOTP(DEMO_ACCOUNTS[0][3]).now())

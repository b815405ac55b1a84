"""The `bidroom` command line."""
from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys

from rich.console import Console
from rich.table import Table

from core.settings import Settings
from web import logs

console = Console(stderr=False)
log = logging.getLogger(__name__)


def cmd_serve(settings: Settings, args) -> int:
    from aiohttp import web

    from web.app import serving_app
    from web.runtime import prepare

    port = args.port or settings.port
    settings = settings.with_(port=port, public_url=settings.public_url if args.port is None
                              else f"http://{settings.host}:{port}")
    migrate = settings.database_url is None or args.migrate or args.demo
    if args.demo:  # the demo's tenders run on days, not the statutory periods (BIDROOM_STATUTORY_PERIODS)
        settings = settings.with_(statutory_periods=False)
    settings, database = prepare(settings, migrate=migrate)
    if args.demo:
        from web.demo import seed_demo
        asyncio.run(seed_demo(settings, console=console, only_if_empty=True))
    app = serving_app(settings)
    log.info("serving", extra={"url": f"http://{settings.host}:{port}", "embedded_db": database.embedded is not None})
    try:
        web.run_app(app, host=settings.host, port=port, access_log=None, print=None,
                    handle_signals=True, shutdown_timeout=10)
    finally:
        if database.embedded is not None:
            database.embedded.stop()
    return 0


def cmd_media_worker(settings: Settings, args) -> int:
    """A media-only process: registers in media_worker, beats, and serves the signaling of the sessions
    PostgreSQL assigns to it (the web tier sends their participants here)."""
    from aiohttp import web

    from evaluation.media.worker import default_worker_id
    from evaluation.media.worker_routes import worker_app
    from web.runtime import prepare

    host = args.host or settings.host
    port = args.port
    base_url = (args.base_url or f"http://{host}:{port}").rstrip("/")
    worker_id = args.id or default_worker_id()
    settings, database = prepare(settings.with_(host=host, port=port), migrate=False)
    app = worker_app(settings, worker_id=worker_id, base_url=base_url)
    log.info("media worker", extra={"worker": worker_id, "base_url": base_url, "listen": f"{host}:{port}"})
    try:
        web.run_app(app, host=host, port=port, access_log=None, print=None, handle_signals=True,
                    shutdown_timeout=10)
    finally:
        if database.embedded is not None:
            database.embedded.stop()
    return 0


def cmd_db_upgrade(settings: Settings, args) -> int:
    from web.runtime import prepare
    _, database = prepare(settings, migrate=True)
    console.print("[green]database is at the latest schema[/green]")
    if database.embedded is not None:
        database.embedded.stop()
    return 0


def cmd_users_create(settings: Settings, args) -> int:
    from core import identity_service
    from core.totp import TotpVault
    from web.runtime import prepare, sessions_for

    password = args.password or getpass.getpass("password: ")
    settings, database = prepare(settings, migrate=True)

    async def go():
        async with sessions_for(settings) as sessions, sessions() as session, session.begin():
            return await identity_service.create_user(
                session, actor="system", username=args.username, password=password,
                display_name=args.display_name or args.username, roles=args.role,
                organisation_public_id=args.organisation, vault=TotpVault.for_keys_dir(settings.keys_dir))

    from core.errors import DomainError
    try:
        user, uri = asyncio.run(go())
    except DomainError as err:
        console.print(f"[red]{err.code}[/red]: {err.message} {err.details or ''}")
        return 2
    finally:
        if database.embedded is not None:
            database.embedded.stop()
    console.print(f"created [bold]{user.username}[/bold] ({user.public_id}) roles={','.join(user.roles)}")
    if uri:
        console.print(f"TOTP provisioning URI (scan into an authenticator app): {uri}")
    return 0


def _enrolment_link(settings: Settings, make) -> int:
    """Run `make(session)` (which returns an IssuedLink) in one transaction and print the link once."""
    from core.errors import DomainError
    from identity.enrolment import enrolment_url
    from web.runtime import prepare, sessions_for

    settings, database = prepare(settings, migrate=True)

    async def go():
        async with sessions_for(settings) as sessions, sessions() as session, session.begin():
            link = await make(session)
            who = link.user.username if link.user else link.expert.public_id
            return link, who, link.enrolment.public_id, list(link.enrolment.roles), link.enrolment.expires_at
    try:
        link, who, enrolment_id, roles, expires_at = asyncio.run(go())
    except DomainError as err:
        console.print(f"[red]{err.code}[/red]: {err.message} {err.details or ''}")
        return 2
    finally:
        if database.embedded is not None:
            database.embedded.stop()
    from core.clock import format_local
    console.print(f"enrolment link for [bold]{who}[/bold] ({enrolment_id}, roles {','.join(roles)}), "
                  f"single use, valid until {format_local(expires_at)}:")
    # printed alone on its line, unwrapped, so it can be copied or piped
    console.print(enrolment_url(settings.public_url, link.token), soft_wrap=True, highlight=False)
    return 0


def cmd_users_invite(settings: Settings, args) -> int:
    """A staff account its owner sets up: the password and the TOTP secret are never shown to the operator."""
    from identity import enrolment

    return _enrolment_link(settings, lambda session: enrolment.invite_staff(
        session, None, username=args.username, display_name=args.display_name or args.username, roles=args.role,
        organisation_public_id=args.organisation))


def cmd_users_invite_expert(settings: Settings, args) -> int:
    """A login for an expert of the pool who has none: the expert chooses the username and password."""
    from identity import enrolment

    return _enrolment_link(settings, lambda session: enrolment.invite_expert(session, None, args.expert))


def cmd_audit_verify(settings: Settings, args) -> int:
    from core.keys import load_or_create_ed25519
    from evidence.ledger_service import verify_ledger
    from web.runtime import prepare, sessions_for

    settings, database = prepare(settings, migrate=False)
    key = load_or_create_ed25519(settings.keys_dir / "ledger_ed25519.pem").public_key()

    async def go():
        async with sessions_for(settings) as sessions, sessions() as session, session.begin():
            return await verify_ledger(session, key)
    try:
        checked, problem = asyncio.run(go())
    finally:
        if database.embedded is not None:
            database.embedded.stop()
    if problem is None:
        console.print(f"[green]OK[/green]: {checked} entries, every leaf, head and checkpoint matches")
        return 0
    console.print(f"[red]FAILED[/red] at seq {problem.seq}: {problem.reason} ({checked} entries verified before it)")
    return 1


def cmd_demo_seed(settings: Settings, args) -> int:
    from web.demo import DemoRefused, seed_demo
    from web.runtime import prepare
    settings, database = prepare(settings, migrate=True)
    try:
        asyncio.run(seed_demo(settings, console=console, only_if_empty=False, tenders=args.tenders,
                              experts=args.experts, force=args.force))
    except DemoRefused as refused:
        console.print(f"[red]demo_refused[/red]: {refused}")
        return 2
    finally:
        if database.embedded is not None:
            database.embedded.stop()
    return 0


def cmd_draw_verify(settings: Settings, args) -> int:
    from expert_pool.draw_verify import main as verify_main
    return verify_main([args.record])


def cmd_score_verify(settings: Settings, args) -> int:
    from evaluation.score_verify import main as verify_main
    return verify_main([args.record])


def cmd_records_verify(settings: Settings, args) -> int:
    """Verify a record PDF against the platform root; with a database, also say whether it is archived."""
    from pathlib import Path

    from core.errors import DomainError
    from evidence.pki import Pki
    from evidence.records_service import verify_upload

    path = Path(args.file)
    if not path.is_file():
        console.print(f"[red]no such file[/red]: {path}")
        return 2
    pki = Pki.load_or_create(settings.keys_dir / "pki", public_url=settings.public_url)
    data = path.read_bytes()

    async def go():
        if args.offline:
            return await verify_upload(None, pki, data)
        from web.runtime import prepare, sessions_for
        prepared, database = prepare(settings, migrate=False)
        try:
            async with sessions_for(prepared) as sessions, sessions() as session, session.begin():
                return await verify_upload(session, pki, data)
        finally:
            if database.embedded is not None:
                database.embedded.stop()
    try:
        report = asyncio.run(go())
    except DomainError as err:
        console.print(f"[red]{err.code}[/red]: {err.message}")
        return 2
    table = Table(title=f"{path.name} · sha256 {report['sha256'][:16]}…")
    for col in ("field", "signer", "time", "intact", "trusted", "timestamp", "coverage", "ok"):
        table.add_column(col)
    for s in report["signatures"]:
        table.add_row(s["field_name"], f"{s['signer_name']} {s['signer_public_id'] or ''}",
                      s["timestamp_time"] or s["signing_time"] or "-", str(s["intact"]), str(s["trusted"]),
                      str(s["timestamp_valid"]), s["coverage"], "[green]yes[/green]" if s["bottom_line"] else "[red]no[/red]")
    console.print(table)
    if not args.offline:
        console.print(f"archived record: {report['record']['record_no'] if report['archived'] else 'no (not byte-identical to any archived record)'}")
    ok = report["valid"] and (args.offline or report["archived"])
    console.print("[green]VALID[/green]" if ok else "[red]NOT VALID[/red]")
    return 0 if ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bidroom", description="public-resource trading and remote evaluation")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--demo", action="store_true", help="seed demo data on first start")
    serve.add_argument("--port", type=int)
    serve.add_argument("--migrate", action="store_true", help="upgrade an external database before serving")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("media-worker", help="run a media worker: signaling, relay and recording of the "
                                                 "evaluation sessions assigned to it (BIDROOM_MEDIA_WORKERS=on)")
    worker.add_argument("--port", type=int, default=8090)
    worker.add_argument("--host", help="listen address (default BIDROOM_HOST)")
    worker.add_argument("--base-url", help="the URL participants reach this worker at (default http://host:port)")
    worker.add_argument("--id", help="worker id (default hostname:pid)")
    worker.set_defaults(func=cmd_media_worker)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="apply every migration").set_defaults(func=cmd_db_upgrade)

    users = sub.add_parser("users", help="accounts").add_subparsers(dest="users_command", required=True)
    create = users.add_parser("create", help="create an account (admin, staff, expert, supervisor)")
    create.add_argument("--username", required=True)
    create.add_argument("--display-name")
    create.add_argument("--role", action="append", required=True,
                        choices=["admin", "agent", "purchaser", "bidder", "expert", "supervisor", "intermediary"])
    create.add_argument("--organisation", help="organisation public id")
    create.add_argument("--password", help="prompted when omitted")
    create.set_defaults(func=cmd_users_create)
    invite = users.add_parser("invite", help="create a staff account and print its one-time enrolment link "
                                             "(the owner sets the password and TOTP)")
    invite.add_argument("--username", required=True)
    invite.add_argument("--display-name")
    invite.add_argument("--role", action="append", required=True,
                        choices=["admin", "agent", "purchaser", "supervisor"])
    invite.add_argument("--organisation", help="organisation public id")
    invite.set_defaults(func=cmd_users_invite)
    invite_expert = users.add_parser("invite-expert", help="print a one-time enrolment link with which an expert "
                                                           "of the pool makes a login")
    invite_expert.add_argument("--expert", required=True, help="the expert's public id, E-XXXXXX")
    invite_expert.set_defaults(func=cmd_users_invite_expert)

    audit = sub.add_parser("audit", help="audit ledger").add_subparsers(dest="audit_command", required=True)
    audit.add_parser("verify", help="recompute the hash chain and checkpoints").set_defaults(func=cmd_audit_verify)

    draw = sub.add_parser("draw", help="verifiable draws").add_subparsers(dest="draw_command", required=True)
    dv = draw.add_parser("verify", help="re-run a published draw record and say whether it matches")
    dv.add_argument("record", help="path to the verification JSON, or - for stdin")
    dv.set_defaults(func=cmd_draw_verify)

    score = sub.add_parser("score", help="evaluation scores").add_subparsers(dest="score_command", required=True)
    sv = score.add_parser("verify", help="recompute a published evaluation record (record.json) and say whether "
                          "its ranking matches")
    sv.add_argument("record")
    sv.set_defaults(func=cmd_score_verify)

    records = sub.add_parser("records", help="signed PDF records").add_subparsers(dest="records_command",
                                                                                 required=True)
    rv = records.add_parser("verify", help="check a record PDF's signatures and whether it is archived")
    rv.add_argument("file")
    rv.add_argument("--offline", action="store_true", help="signatures only; do not look the file up")
    rv.set_defaults(func=cmd_records_verify)

    demo = sub.add_parser("demo", help="demo data").add_subparsers(dest="demo_command", required=True)
    seed = demo.add_parser("seed", help="seed a demo data set")
    seed.add_argument("--tenders", type=int, default=40)
    seed.add_argument("--experts", type=int, default=200)
    seed.add_argument("--force", action="store_true",
                      help="seed even though the database holds data the demo did not create")
    seed.set_defaults(func=cmd_demo_seed)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings.from_env()
    logs.configure(json_lines=settings.log_json)
    return args.func(settings, args)


if __name__ == "__main__":
    sys.exit(main())

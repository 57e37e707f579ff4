"""`gradeflow` command: run the API, the worker or the whole dev stack; migrate; manage tenants and keys."""

from __future__ import annotations

import argparse
import asyncio
import sys

from gradeflow.core.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gradeflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("dev", help="start database, Redis and storage as needed, migrate, run API and worker")
    api = sub.add_parser("api", help="serve the API (uvicorn)")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    api.add_argument("--workers", type=int, default=1)
    sub.add_parser("worker", help="run the arq worker")
    sub.add_parser("migrate", help="upgrade the database to the latest schema")
    org = sub.add_parser("create-org", help="create an organization")
    org.add_argument("slug")
    org.add_argument("--name")
    key = sub.add_parser("create-key", help="create an API key and print its secret once")
    key.add_argument("org_slug")
    key.add_argument("--name", default="cli")
    key.add_argument("--role", choices=["admin", "service"], default="admin")
    args = parser.parse_args(argv)

    if args.command != "dev" and not _settings_valid():
        return 2
    if args.command == "dev":
        from gradeflow.devstack.run import run_dev

        return run_dev()
    if args.command == "api":
        import uvicorn

        from gradeflow.api.size_limits import BoundedHttpToolsProtocol

        uvicorn.run(
            "gradeflow.api.main:serve",
            factory=True,
            http=BoundedHttpToolsProtocol,  # httptools, refusing oversized request heads as they arrive
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_config=None,  # our JSON lines (gradeflow/core/logs.py); access lines come from the app
            access_log=False,
        )
        return 0
    if args.command == "worker":
        from arq import run_worker

        from gradeflow.core import logs

        logs.configure(get_settings().log_level)
        from gradeflow.worker.main import WorkerSettings

        run_worker(WorkerSettings)  # type: ignore[arg-type]
        return 0
    if args.command == "migrate":
        from gradeflow.db.migrate import upgrade

        upgrade(get_settings().async_database_url)
        return 0
    return asyncio.run(_tenancy(args))


def _settings_valid() -> bool:
    """Check the settings before starting anything, and say plainly what is wrong (never a value)."""
    from pydantic import ValidationError

    try:
        get_settings()
    except ValidationError as exc:
        for error in exc.errors(include_input=False, include_url=False):
            name = "GRADEFLOW_" + "__".join(str(part) for part in error["loc"]).upper()
            message = error["msg"].removeprefix("Value error, ")
            print(f"gradeflow: {message if message.startswith(name) else f'{name}: {message}'}", file=sys.stderr)
        return False
    return True


async def _tenancy(args: argparse.Namespace) -> int:
    from gradeflow.access.service import auth
    from gradeflow.core.errors import DomainError
    from gradeflow.db.engine import make_engine, make_sessionmaker

    engine = make_engine(get_settings())
    try:
        async with make_sessionmaker(engine)() as session:
            if args.command == "create-org":
                org = await auth.create_organization(session, args.slug, args.name or args.slug)
                print(f"created organization {org.slug}")
            else:
                org = await auth.get_organization_by_slug(session, args.org_slug)
                _, secret = await auth.create_api_key(session, org.id, args.name, args.role)
                print(secret)
    except DomainError as exc:
        print(f"gradeflow: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())

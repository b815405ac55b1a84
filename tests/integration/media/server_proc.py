"""The platform's server in its own process, so a test can stop it abruptly (SIGKILL).

    python -m tests.integration.media.server_proc <database url> <data dir> <port> <segment seconds>
"""
import sys
from pathlib import Path

from aiohttp import web

from core.settings import Settings
from web.app import create_app

if __name__ == "__main__":
    db_url, data_dir, port, segment_s = sys.argv[1:5]
    settings = Settings(data_dir=Path(data_dir), database_url=db_url, run_scheduler=False, log_json=False,
                        port=int(port), statutory_periods=False, media_segment_s=float(segment_s))
    web.run_app(create_app(settings), host="127.0.0.1", port=int(port), print=lambda *a: print(*a, flush=True))

"""A publisher in its own process, so a test can kill it outright: publishes a place until killed.

    python -m tests.integration.media.publisher_proc <server url> <session id> <place id> <access token>
"""
import asyncio
import sys

import aiohttp

from tests.integration.media.peers import publish


async def main(base: str, session_id: str, place_id: str, token: str) -> None:
    async with aiohttp.ClientSession() as http:
        pub = await publish(http, session_id, place_id, {"Authorization": f"Bearer {token}"}, base=base)
        print("publishing", pub.publication, flush=True)
        while True:
            await asyncio.sleep(1)
            print("sent", pub.video.sent, flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))

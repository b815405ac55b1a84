"""A participant whose socket closes while the server is answering it (the page left, the network dropped) is an
ordinary departure: aiohttp's send then raises ClientConnectionResetError, and the exchange ends quietly. Before,
it was logged as a signaling failure, the refusal sent after it failed the same way, and the request's middleware
took the reset connection for a lost database."""
import asyncio
import logging

from aiohttp import ClientConnectionResetError, web
from aiohttp.test_utils import TestClient, TestServer

from evaluation.media import signaling


async def test_a_socket_reset_mid_exchange_ends_the_exchange_quietly(caplog):
    outcome: dict = {}

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)

        async def run() -> None:
            await signaling.send(ws, {"type": "ready"})
            # what aiohttp raises when the offer goes to a socket whose connection is closing
            raise ClientConnectionResetError("Cannot write to closing transport")

        try:
            await signaling._guarded(ws, run)
            outcome["raised"] = None
        except Exception as err:  # noqa: BLE001 - what the middleware would have received
            outcome["raised"] = err
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        with caplog.at_level(logging.INFO, logger="evaluation.media.signaling"):
            ws = await client.ws_connect("/ws")
            assert (await ws.receive_json(timeout=5)) == {"type": "ready"}
            for _ in range(100):
                if "raised" in outcome:
                    break
                await asyncio.sleep(0.05)
            await ws.close()
    finally:
        await client.close()
    assert outcome.get("raised", "no answer") is None
    records = [r for r in caplog.records if r.name == "evaluation.media.signaling"]
    assert not [r for r in records if r.levelno >= logging.ERROR], [r.getMessage() for r in records]
    assert any("closed during the exchange" in r.getMessage() for r in records)

"""One measurement of `_generate` calls/s; run in a fresh interpreter by client_overhead.py.

usage: _measure_client.py {aiohttp|tgispy|dspy24|text-generation} {seq|conc} PORT SECONDS
Prints one JSON object: {"calls_per_s": ..., "calls": ...}.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

IN_FLIGHT = 32


def body(i: int) -> dict[str, Any]:
    return {
        "inputs": f"Question {i}: what is the capital of France?",
        "parameters": {"max_new_tokens": 75, "do_sample": False, "stop": ["\n"]},
    }


async def aiohttp_run(url: str, mode: str, seconds: float) -> int:
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one(i: int) -> None:
            async with session.post(url + "/generate", json=body(i)) as resp:
                json.loads(await resp.read())

        return await drive_async(one, mode, seconds)


async def drive_async(one: Any, mode: str, seconds: float) -> int:
    count = 0
    end = time.perf_counter() + seconds
    if mode == "seq":
        while time.perf_counter() < end:
            await one(count)
            count += 1
        return count

    async def worker() -> None:
        nonlocal count
        while time.perf_counter() < end:
            i = count
            count += 1
            await one(i)

    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    return count


def drive_threads(one: Any, mode: str, seconds: float) -> int:
    count = 0
    lock = threading.Lock()
    end = time.perf_counter() + seconds
    if mode == "seq":
        while time.perf_counter() < end:
            one(count)
            count += 1
        return count

    def worker() -> None:
        nonlocal count
        while time.perf_counter() < end:
            with lock:
                i = count
                count += 1
            one(i)

    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        for f in [pool.submit(worker) for _ in range(IN_FLIGHT)]:
            f.result()
    return count


def tgispy_transport(tool: str) -> Any:
    """tgispy's core install speaks aiohttp; tgispy[speed] its own HTTP/1.1 (FastTransport)."""
    from tgispy.tgi import AiohttpTransport, FastTransport

    return FastTransport() if tool == "tgispy-speed" else AiohttpTransport()


def run_async(tool: str, coro: Any) -> Any:
    """Run the async driver: on uvloop for tgispy[speed] (its other half), else asyncio's loop."""
    if tool == "tgispy-speed":
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


def main() -> None:
    tool, mode, port, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    url = f"http://127.0.0.1:{port}"
    start = time.perf_counter()
    if tool == "aiohttp":
        calls = asyncio.run(aiohttp_run(url, mode, seconds))
    elif tool in ("tgispy", "tgispy-speed"):
        from tgispy.lm._tgi import HFClientTGI

        lm = HFClientTGI(
            model="canned/model",
            port=port,
            url="http://127.0.0.1",
            cache=False,
            transport=tgispy_transport(tool),
        )
        lm._generate("warm up")
        start = time.perf_counter()
        if mode == "seq":
            calls = drive_threads(lambda i: lm._generate(f"Question {i}?"), mode, seconds)
        else:

            async def amain() -> int:
                return await drive_async(lambda i: lm.agenerate(f"Question {i}?"), mode, seconds)

            calls = run_async(tool, amain())
    elif tool == "dspy24":
        import dspy

        lm = dspy.HFClientTGI(model="canned/model", port=port, url="http://127.0.0.1")
        lm._generate("warm up")
        start = time.perf_counter()
        calls = drive_threads(lambda i: lm._generate(f"Question {i}?"), mode, seconds)
    elif tool == "text-generation":
        from text_generation import AsyncClient

        client = AsyncClient(url)

        async def tg_main() -> int:
            return await drive_async(
                lambda i: client.generate(f"Question {i}?", max_new_tokens=75), mode, seconds
            )

        calls = asyncio.run(tg_main())
    else:
        raise SystemExit(f"unknown tool {tool}")
    elapsed = time.perf_counter() - start
    print(json.dumps({"calls_per_s": calls / elapsed, "calls": calls}))


if __name__ == "__main__":
    main()

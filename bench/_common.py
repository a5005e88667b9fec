"""Shared benchmark plumbing: a loopback nginx with canned TGI bodies, anchor venvs, timing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENVS = ROOT / ".bench" / "venvs"

CANNED_TEXT = "Paris is the capital of France."
# With details, as TGI answers `details=true` (TGI's own client always asks for them).
CANNED_GENERATE = json.dumps(
    {
        "generated_text": CANNED_TEXT,
        "details": {
            "finish_reason": "eos_token",
            "generated_tokens": 8,
            "seed": None,
            "prefill": [],
            "tokens": [],
        },
    }
)
CANNED_INFO = json.dumps(
    {
        "model_id": "canned/model",
        "model_pipeline_tag": "text-generation",
        "max_concurrent_requests": 4096,
        "max_best_of": 4,
        "max_stop_sequences": 8,
        "max_input_tokens": 4095,
        "max_total_tokens": 4096,
        "version": "3.3.6-dev0",
    }
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nginx_binary() -> str:
    """Find nginx, installing Debian's package when missing (benchmarks only; needs root)."""
    for cand in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if cand and Path(cand).exists():
            return cand
    print("installing nginx from Debian (one time) ...", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=False)
    subprocess.run(["apt-get", "install", "-y", "-qq", "nginx-light"], check=True)
    return "/usr/sbin/nginx"


def _nginx_quote(text: str) -> str:
    """``text`` inside an nginx single-quoted string."""
    return text.replace("\\", "\\\\").replace("'", "\\'")


@contextmanager
def canned_nginx(
    generate_body: str = CANNED_GENERATE, routes: Mapping[str, str] | None = None
) -> Iterator[int]:
    """Run nginx on 127.0.0.1 answering TGI's /generate and /info with canned bodies.

    Every other POST path (``/v1/completions`` too) gets ``generate_body``; ``routes`` adds exact
    paths with their own JSON bodies (``{"/v1/models": ...}`` for OpenAI-compatible clients).
    """
    binary = nginx_binary()
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="tgispy-nginx-"))
    body = _nginx_quote(generate_body)
    extra = "".join(
        f"    location = {path} {{ default_type application/json; "
        f"return 200 '{_nginx_quote(text)}'; }}\n"
        for path, text in (routes or {}).items()
    )
    conf = f"""
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  server {{
    listen 127.0.0.1:{port};
    location = /info {{ default_type application/json; return 200 '{CANNED_INFO}'; }}
    location = /health {{ return 200; }}
    location = / {{ default_type application/json; return 200 '[{body}]'; }}
{extra}    location / {{
      default_type application/json;
      add_header x-prompt-tokens 12;
      add_header x-generated-tokens 8;
      return 200 '{body}';
    }}
  }}
}}
"""
    (tmp / "nginx.conf").write_text(conf)
    proc = subprocess.Popen([binary, "-c", str(tmp / "nginx.conf"), "-p", str(tmp)])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"nginx did not start; see {tmp}/error.log")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


DSPY24_REQUIREMENTS = ["dspy-ai==2.4.17"]
#: DSPy 3.4 with tgispy (editable, this checkout) beside it: bench/dspy3.py runs tgispy's engine
#: under ``dspy.LM`` in the same interpreter as DSPy's own engines.
DSPY34_REQUIREMENTS = ["dspy==3.4.1", "-e", str(ROOT)]


def anchor_python(name: str, requirements: list[str]) -> str:
    """A venv under .bench/venvs/<name> with ``requirements`` installed once and reused."""
    env = ENVS / name
    py = env / "bin" / "python"
    stamp = env / ".installed"
    if not stamp.exists() or stamp.read_text() != "\n".join(requirements):
        print(f"creating anchor venv {env} ({' '.join(requirements)}), once ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
        # pip's output is long and mostly index warnings: show it only when the install fails.
        done = subprocess.run(
            [str(py), "-m", "pip", "install", "-q", *requirements],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            print(done.stdout[-4000:], done.stderr[-4000:], sep="\n", file=sys.stderr)
            raise RuntimeError(f"installing {requirements} into {env} failed (see above)")
        stamp.write_text("\n".join(requirements))
    return str(py)


def dspy24_python() -> str:
    """Interpreter of the DSPy 2.4.17 anchor venv (created on first use)."""
    return anchor_python("dspy24", DSPY24_REQUIREMENTS)


def dspy34_python() -> str:
    """Interpreter of the DSPy 3.4.1 (+ tgispy) venv (created on first use)."""
    return anchor_python("dspy34", DSPY34_REQUIREMENTS)


def run_json(
    python: str, script: str, *args: str, timeout: float = 300, cache: bool = False
) -> dict[str, float]:
    """Run a measurement script in another interpreter; it prints one JSON object last.

    ``cache`` turns on each library's own default cache (DSPy 2.4: joblib on disk; tgispy: memory
    + disk) in a fresh directory; prompts are unique, so every call is a miss that writes.
    The result gains ``peak_rss_mib``, the measured process's own peak resident set (from
    ``wait4``), and the run is killed after ``timeout`` seconds (raising ``TimeoutError``).
    """
    env = {
        **os.environ,
        "DSP_CACHEBOOL": str(cache),
        "BENCH_CACHE": "1" if cache else "0",
        "PYTHONPATH": str(ROOT / "bench"),
        # LiteLLM fetches its model price map over the network at import unless told not to.
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    tmp = tempfile.mkdtemp(prefix="tgispy-bench-")
    if cache:
        env["TGISPY_CACHEDIR"] = f"{tmp}/tgispy"
        env["DSP_CACHEDIR"] = f"{tmp}/dsp"
        env["DSP_NOTEBOOK_CACHEDIR"] = f"{tmp}/dsp-nb"
    try:
        with open(f"{tmp}/out", "w+") as out, open(f"{tmp}/err", "w+") as err:
            proc = subprocess.Popen(
                [python, str(ROOT / "bench" / script), *args], stdout=out, stderr=err, env=env
            )
            killer = threading.Timer(timeout, proc.kill)
            killer.start()
            try:
                # wait4, not wait: it also returns the child's own resource usage (peak RSS).
                _, status, usage = os.wait4(proc.pid, 0)
            finally:
                killer.cancel()
            proc.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    what = f"{Path(python).parent.parent.name}/{script} {' '.join(args)}"
    if proc.returncode == -signal.SIGKILL:
        raise TimeoutError(f"{what}: killed after {timeout:.0f} s")
    if proc.returncode:
        tail = "\n".join(stderr.strip().splitlines()[-8:])
        raise RuntimeError(f"{what}: exit {proc.returncode}\n{tail}")
    result = dict(json.loads(stdout.strip().splitlines()[-1]))
    result["peak_rss_mib"] = usage.ru_maxrss / 1024  # Linux reports KiB
    return result


def summarize(samples: list[float]) -> tuple[float, float]:
    """(median, spread as (max-min)/median); the spread of one sample is 0."""
    med = statistics.median(samples)
    spread = (max(samples) - min(samples)) / med if med else 0.0
    return med, spread


# ---- report rows and progress, shared by run_all.py and the scripts it runs --------------------
#: Seconds since the start of the outermost benchmark process (inherited by the scripts it runs),
#: so every progress line of one `tgispy bench` run counts from the same start.
_T0 = float(os.environ.setdefault("TGISPY_BENCH_T0", repr(time.time())))


def progress(text: str) -> None:
    """One progress line, prefixed with the time since the whole run started."""
    elapsed = int(time.time() - _T0)
    print(f"[{elapsed // 60:02d}:{elapsed % 60:02d}] {text}", flush=True)


def bench_row(
    scenario: str,
    subject: str,
    unit: str,
    samples: list[float],
    *,
    higher_is_better: bool = True,
) -> dict[str, object]:
    """One row of the report format run_all.py reads from ``--json-out`` files.

    Rows whose subject starts with "tgispy" are ours; the first of them in a scenario is the one
    every other row is compared with.
    """
    return {
        "scenario": scenario,
        "subject": subject,
        "unit": unit,
        "samples": [float(s) for s in samples],
        "higher_is_better": higher_is_better,
    }


def write_rows(path: Path, rows: list[dict[str, object]]) -> None:
    """Write report rows as one JSON list (the ``--json-out`` format)."""
    path.write_text(json.dumps(rows, indent=1))

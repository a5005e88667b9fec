"""``tgispy serve``: an embedded server speaking text-generation-inference's HTTP protocol.

Real TGI stays the production engine; this is its embedded default, like SQLite beside
PostgreSQL: llama.cpp (through xllamacpp) running SmolLM2-135M-Instruct on the CPU, or a
simulated engine (``backend="sim"``) with scripted answers, latency and fault injection for tests
and load work.

Importing this package imports aiohttp but not xllamacpp; the llama backend imports it when it
starts.

Example:
    >>> from tgispy.server import start_server
    >>> with start_server(["--backend", "sim", "--sim-text", "Paris."]) as server:  # doctest: +SKIP
    ...     print(server.url)
    http://127.0.0.1:40313
"""

from tgispy._public import publish as _publish
from tgispy.server._app import create_app
from tgispy.server._config import ServerConfig, SimConfig, default_model_path
from tgispy.server._process import ServerHandle, ServerProcess, start_server
from tgispy.server._serve import main, serve
from tgispy.server._sim import SimBackend

__all__ = [
    "ServerConfig",
    "ServerHandle",
    "ServerProcess",
    "SimBackend",
    "SimConfig",
    "create_app",
    "default_model_path",
    "main",
    "serve",
    "start_server",
]

_publish(__name__, globals(), __all__)


def __dir__() -> list[str]:
    return sorted(__all__)

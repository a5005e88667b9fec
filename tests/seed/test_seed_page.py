"""Every code block of the seed page (DSPy's HFClientTGI doc) runs against `tgispy serve`.

The Python blocks run verbatim after `import tgispy as dspy`, against the embedded server with the
real SmolLM2 model on 127.0.0.1. The page hard-codes port 8080; when 8080 is taken on this machine
the test substitutes the server's free port (the only change it ever makes, asserted below).
The last block is a signature sketch (no body): we check our constructor has that signature.
The shell blocks (git clone, docker) set up a real TGI and are outside what a test can run here.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import re
from pathlib import Path

import pytest

import tgispy
from tgispy.server import ServerHandle

SEED = Path(__file__).with_name("HFClientTGI.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", SEED, flags=re.S)


@pytest.fixture(scope="module")
def server(model_server: ServerHandle) -> int:
    """The port of the session's real-model server (the page's port=8080 is patched to it)."""
    return model_server.port


def test_page_has_the_expected_blocks() -> None:
    assert len(BLOCKS) == 4
    assert "dspy.HFClientTGI(" in BLOCKS[0]
    assert "dspy.ChainOfThought('question -> answer')" in BLOCKS[1]
    assert "tgi_llama2._generate(prompt='What is the capital of Paris?')" in BLOCKS[2]
    assert "class HFClientTGI(HFModel)" in BLOCKS[3]


@pytest.mark.model
def test_python_blocks_run_verbatim(server: int) -> None:
    source = "\n".join(BLOCKS[:3])
    if server != 8080:
        patched = source.replace("port=8080", f"port={server}")
        assert patched.count(f"port={server}") == 1
        source = patched
    namespace: dict[str, object] = {"dspy": tgispy}
    out = io.StringIO()
    with tgispy.context(), contextlib.redirect_stdout(out):
        exec(compile(source, "HFClientTGI.md", "exec"), namespace)
    printed = out.getvalue()
    lm = namespace["tgi_llama2"]
    assert isinstance(lm, tgispy.HFClientTGI)
    # block 2: ChainOfThought printed an answer string (whatever the 135M model says)
    response = namespace["response"]
    assert isinstance(response, dict)  # block 3 rebinds `response` to the _generate result
    assert set(response) == {"prompt", "choices"}
    assert response["prompt"] == "What is the capital of Paris?"
    assert [set(c) for c in response["choices"]] == [{"text"}]
    assert str(response) in printed
    # ChainOfThought cost two requests with the seed's stop=["\n", "\n\n"] (the rationale stops at
    # its newline, then the continuation asks for the answer); as in DSPy 2.4, the raw
    # _generate call is not recorded in history.
    assert len(lm.history) == 2
    assert all(h["replica"] == f"http://localhost:{server}" for h in lm.history)
    assert lm.history[0]["prompt"].endswith(
        "Question: What is the capital of Paris?\nReasoning: Let's think step by step in order to"
    )


def test_constructor_matches_the_documented_signature() -> None:
    params = inspect.signature(tgispy.HFClientTGI.__init__).parameters
    names = list(params)
    assert names[:5] == ["self", "model", "port", "url", "http_request_kwargs"]
    assert params["http_request_kwargs"].default is None
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    # deliberate difference (docs/compat.md): the default host is localhost, not future-hgx-1
    assert params["url"].default == "http://localhost"

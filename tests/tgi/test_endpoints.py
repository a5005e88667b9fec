from __future__ import annotations

import pytest

from tgispy.errors import ConfigError
from tgispy.tgi._endpoints import replica_urls


@pytest.mark.parametrize(
    ("url", "port", "expected"),
    [
        ("http://localhost", 8080, ("http://localhost:8080",)),
        ("http://localhost/", 8080, ("http://localhost:8080",)),
        ("http://localhost", [8080, 8081], ("http://localhost:8080", "http://localhost:8081")),
        ("http://localhost", (8080,), ("http://localhost:8080",)),
        ("http://localhost", "8080", ("http://localhost:8080",)),
        ("https://x.endpoints.example/", None, ("https://x.endpoints.example",)),
        ("https://host/prefix/v1/", None, ("https://host/prefix/v1",)),
        (["http://a:1", "https://b/p"], None, ("http://a:1", "https://b/p")),
        ("http://[::1]", 8080, ("http://[::1]:8080",)),
    ],
)
def test_replica_urls(url: object, port: object, expected: tuple[str, ...]) -> None:
    assert replica_urls(url, port) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "port", "fix"),
    [
        ("localhost", 8080, "http://"),
        ("ftp://localhost", 8080, "http://"),
        ("http://localhost:9000", 8080, "already has a port"),
        ("http://localhost", 0, "between 1 and 65535"),
        ("http://localhost", 70000, "between 1 and 65535"),
        ("http://localhost", [], "at least one port"),
        ("http://localhost", "abc", "int like 8080"),
        ("http://localhost", [8080, 8080], "listed twice"),
        (["http://a", "http://b"], [1, 2], "either a list of ports"),
        ([], None, "non-empty list"),
        ("http://localhost?x=1", 8080, "query string"),
        ("http://localhost", True, "between 1 and 65535"),
    ],
)
def test_replica_urls_errors_name_the_fix(url: object, port: object, fix: str) -> None:
    with pytest.raises(ConfigError, match=fix):
        replica_urls(url, port)  # type: ignore[arg-type]

"""Loading serve's configuration: typed sections, file:line errors, secrets by reference."""

from __future__ import annotations

import pytest

from stackwatch.config import parse_config
from stackwatch.config.loader import ConfigErrors
from stackwatch.config.schema import Address, parse_address, parse_size
from stackwatch.core.errors import ConfigError


def test_empty_file_gives_defaults() -> None:
    settings = parse_config("", "serve.yaml")
    assert settings.sources == [] and settings.sinks == [] and settings.limits.batch_size == 5000
    assert settings.listen.metrics is None


def test_sources_are_typed_by_their_module() -> None:
    settings = parse_config(
        "sources:\n  - {type: syslog_tcp, listen: '127.0.0.1:6514', rate_limit: 100}\n"
        "  - {type: file, name: logs, paths: [/var/log/x.log], start_at: beginning}\n"
    )
    tcp, files = settings.sources
    assert tcp.name == "syslog_tcp" and tcp.listen == Address("127.0.0.1", 6514) and tcp.rate_limit == 100.0
    assert files.name == "logs" and files.paths == ["/var/log/x.log"]


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("sources:\n  - type: syslog_tcp\n    listn: 1\n", "serve.yaml:3", "did you mean 'listen'"),
        ("limits:\n  batch_size: many\n", "serve.yaml:2", "expected an integer"),
        ("limits:\n  commit_interval: soon\n", "serve.yaml:2", "bad duration"),
        ("sourcs: []\n", "serve.yaml:1", "did you mean 'sources'"),
        ("sources:\n  - {type: syslog_tpc}\n", "serve.yaml:2", "did you mean 'syslog_tcp'"),
        (
            "sinks:\n  - type: webhook\n    url: http://127.0.0.1/h\n    secret: hunter2\n",
            "serve.yaml:4",
            "never inline",
        ),
        (
            "sinks:\n  - {type: file, name: a}\n  - {type: file, name: a}\n",
            "serve.yaml:3",
            "duplicate sink name",
        ),
        (
            "sinks:\n  - {type: file, name: a}\nrouting:\n  - {sinks: [b]}\n",
            "serve.yaml:4",
            "unknown sink 'b'",
        ),
        ("routing:\n  - {sinks: [], min_severity: huge}\n", "serve.yaml:2", "min_severity"),
        ("store:\n  url: postgresql://sw:pw@127.0.0.1/sw\n", "serve.yaml:2", "must not contain a password"),
        (
            "sources:\n  - {type: amqp, url: 'amqp://u:p@127.0.0.1/'}\n",
            "serve.yaml:2",
            "must not contain a password",
        ),
        ("listen:\n  metrics: 127.0.0.1:9108\n", "serve.yaml:2", "metrics_token is required"),
        (
            "sources:\n  - type: syslog_tcp\n    tls: {cert: a.pem, key: a.key, require_client_cert: true}\n",
            "serve.yaml:3",
            "needs client_ca",
        ),
        ("sources:\n  - {type: file, paths: [relative.log]}\n", "serve.yaml:2", "not an absolute path"),
        ("maintenance:\n  windows:\n    - {name: w, cron: 'bad', duration: 1h}\n", "serve.yaml", "cron"),
        ("sources: [\n", "serve.yaml", "invalid YAML"),
    ],
)
def test_errors_name_file_line_and_field(text: str, where: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "serve.yaml")
    assert str(info.value).startswith(where) and message in str(info.value)


def test_secret_from_environment_is_resolved_and_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SW_TEST_TOKEN", "s3cret")
    settings = parse_config("listen:\n  metrics: 127.0.0.1:0\n  metrics_token: $env:SW_TEST_TOKEN\n")
    token = settings.listen.metrics_token
    assert token is not None and token.value == "s3cret"
    assert "s3cret" not in repr(settings) and "s3cret" not in str(token)


def test_secret_from_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    secret = tmp_path / "hook.secret"
    secret.write_text("filesecret\n")
    settings = parse_config(
        f"sinks:\n  - {{type: webhook, url: 'http://127.0.0.1/h', secret: '$file:{secret}'}}\n"
    )
    assert settings.sinks[0].secret.value == "filesecret"


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("$env:SW_SURELY_UNSET_VARIABLE", "is not set"),
        ("$file:/nonexistent/secret", "cannot read secret file"),
        ("$file:relative/secret", "must be an absolute path"),
    ],
)
def test_unresolvable_secrets_are_errors(reference: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(f"sinks:\n  - {{type: webhook, url: 'http://127.0.0.1/h', secret: '{reference}'}}\n")


def test_store_password_goes_into_the_url_only_when_opening(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SW_DB_PW", "p@ss/word")
    settings = parse_config("store:\n  url: postgresql://sw@127.0.0.1:5432/sw\n  password: $env:SW_DB_PW\n")
    assert settings.store.url == "postgresql://sw@127.0.0.1:5432/sw"
    assert settings.store.open_url() == "postgresql://sw:p%40ss%2Fword@127.0.0.1:5432/sw"


def test_web_and_respond_sections_go_to_their_owners() -> None:
    settings = parse_config("web: {}\nrespond: {}\n")
    # Owned by other modules: their settings object when installed, else the raw mapping.
    assert settings.web is not None and settings.respond is not None


def test_owner_errors_keep_the_file_name() -> None:
    pytest.importorskip("stackwatch.respond.policy")
    with pytest.raises(ConfigError, match=r"^serve\.yaml:2: respond\.surely_not_a_setting"):
        parse_config("respond:\n  surely_not_a_setting: 1\n", "serve.yaml")


@pytest.mark.parametrize(
    ("text", "expected"), [("64k", 65536), ("8M", 8 * 1024**2), (512, 512), ("1G", 1024**3)]
)
def test_sizes(text: object, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:514", Address("127.0.0.1", 514)),
        ("[::1]:6514", Address("::1", 6514)),
        (514, Address("0.0.0.0", 514)),
        (":9108", Address("0.0.0.0", 9108)),
    ],
)
def test_addresses(text: object, expected: Address) -> None:
    assert parse_address(text) == expected


def test_every_problem_is_reported_not_only_the_first() -> None:
    text = ("hostnme: x\n"
            "store:\n  url: postgresql://sw:pw@127.0.0.1/sw\n"
            "sources:\n  - {type: nosuch}\n  - {type: file, paths: [relative.log]}\n"
            "sinks:\n  - {type: file, name: a}\n  - {type: file, name: a}\n"
            "routing:\n  - {sinks: [b]}\n")
    with pytest.raises(ConfigErrors) as info:
        parse_config(text, "serve.yaml")
    reported = [str(problem) for problem in info.value.problems]
    assert [line.split(":")[1] for line in reported] == ["1", "3", "5", "6", "9", "11"], reported
    assert "unknown section 'hostnme'" in reported[0]
    assert "must not contain a password" in reported[1]
    assert "unknown source type 'nosuch'" in reported[2]
    assert "not an absolute path" in reported[3]
    assert "duplicate sink name" in reported[4]
    assert "unknown sink 'b'" in reported[5]


def test_cluster_batch_events_over_the_wire_limit_is_refused_at_load() -> None:
    """A batch of more items than the wire format takes is refused by encode_batch, which stops
    the collector (again after every restart, on the same records): the setting is refused."""
    from stackwatch.cluster.wire import MAX_BATCH_ITEMS

    too_many = MAX_BATCH_ITEMS + 1
    with pytest.raises(ConfigError) as info:
        parse_config(f"cluster:\n  batch_events: {too_many}\n  max_unconfirmed: {too_many * 2}\n",
                     "serve.yaml")
    assert f"batch_events must be 1..{MAX_BATCH_ITEMS}" in str(info.value)
    settings = parse_config(f"cluster:\n  batch_events: {MAX_BATCH_ITEMS}\n  max_unconfirmed: {too_many}\n")
    assert settings.cluster.batch_events == MAX_BATCH_ITEMS


def test_an_empty_metrics_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty variable gave an empty token, and MonitorHTTP's bearer check then let in
    'Authorization: Bearer' with nothing after it: /metrics open to anyone."""
    monkeypatch.setenv("SW_TEST_TOKEN", "")
    with pytest.raises(ConfigError) as info:
        parse_config("listen:\n  metrics: 127.0.0.1:0\n  metrics_token: $env:SW_TEST_TOKEN\n", "serve.yaml")
    assert "metrics_token ($env:SW_TEST_TOKEN) is empty" in str(info.value)


def test_cluster_commit_stall_limit_is_a_checked_duration() -> None:
    assert parse_config("").cluster.commit_stall_limit == 300.0
    assert parse_config("cluster:\n  commit_stall_limit: 10m\n").cluster.commit_stall_limit == 600.0
    for bad in ("0", "500ms", "2d"):
        with pytest.raises((ConfigError, ConfigErrors), match="commit_stall_limit"):
            parse_config(f"cluster:\n  commit_stall_limit: {bad}\n")

"""Config loading: every kind of mistake gives file:line, YAML path, expected and found; all
mistakes are reported at once; secrets never appear in messages."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from sync.config import (
    Config,
    ConfigError,
    CustomerSync,
    OrderSync,
    config_json_schema,
    format_duration,
    load_config,
    parse_duration,
)
from tests.config.conftest import WriteYaml

HEAD = """\
crm:
  connector: fakecrm
  token: t0ken-value-1
erp:
  connector: fakeerp
  url: https://erp.example.com
  api_key: k3y-value-2
"""  # 7 lines: the cases below start at line 8

ENV = {"TOKEN": "env-token-secret", "EMPTY": ""}


def _errors(path: Path, model: type[Config], env: dict[str, str] | None = None) -> list:
    with pytest.raises(ConfigError) as info:
        load_config(path, ENV if env is None else env, model=model)
    return info.value.errors


# (case id, YAML after HEAD, line, dotted path, fragments the message must contain)
CASES = [
    ("wrong type", "sync:\n  customer:\n    batch_size: lots\n",
     10, "sync.customer.batch_size", ["expected an integer", "found 'lots'"]),
    ("unknown key top level", "sync: {customer: {}}\nwebhook: {}\n",
     9, "webhook", ["unknown key 'webhook'", "(did you mean 'webhooks'?)", "expected one of:", "dead_letters"]),
    ("unknown entity", "sync:\n  customer: {}\n  customers: {}\n",
     10, "sync.customers", ["expected an entity: customer, product, order, stock_level, payment",
                            "found 'customers'"]),
    ("bad duration", "sync:\n  customer:\n    every: 5 minutes\n",
     10, "sync.customer.every", ["expected a duration like 5m or 30s", "found '5 minutes'"]),
    ("zero duration", "sync:\n  customer:\n    every: 0s\n",
     10, "sync.customer.every", ["greater than zero", "found '0s'"]),
    ("number as duration", "sync:\n  customer:\n    overlap: 120\n",
     10, "sync.customer.overlap", ["expected a duration", "found 120"]),
    ("bad enum", "sync:\n  customer:\n    direction: sideways\n",
     10, "sync.customer.direction", ["expected one of 'both', 'crm_to_erp' or 'erp_to_crm'",
                                     "found 'sideways'"]),
    ("bad conflict policy", "sync:\n  customer: {conflict: oldest_wins}\n",
     9, "sync.customer.conflict", ["'newest_wins'", "'manual'", "found 'oldest_wins'"]),
    ("order option under customer", "sync:\n  customer:\n    every: 5m\n    confirm: true\n",
     11, "sync.customer.confirm", ["'confirm' is an order-only option", "sync.order"]),
    ("order option under payment", "sync:\n  payment:\n    on_shortage: purchase_request\n",
     10, "sync.payment.on_shortage", ["order-only option"]),
    ("unknown option under order lists order options", "sync:\n  order:\n    confirmm: true\n",
     10, "sync.order.confirmm", ["unknown key 'confirmm'", "confirm", "credit_check", "stages"]),
    ("unknown owner field", "sync:\n  customer:\n    owner: {credit_limt: erp}\n",
     10, "sync.customer.owner.credit_limt", ["expected a customer field", "or extra.<name>",
                                             "found 'credit_limt'"]),
    ("bad owner side", "sync:\n  customer:\n    owner: {credit_limit: finance}\n",
     10, "sync.customer.owner.credit_limit", ["expected one of 'crm' or 'erp'", "found 'finance'"]),
    ("unknown match_on field", "sync:\n  product:\n    match_on: [sku, barcode]\n",
     10, "sync.product.match_on[1]", ["expected a product field", "found 'barcode'"]),
    ("missing env var", "sync: {customer: {}}\nstate:\n  url: ${DATABASE_URL}\n",
     10, "state.url", ["environment variable DATABASE_URL is not set"]),
    ("bad YAML syntax", "sync:\n  customer: {every: 5m\n",
     10, "(top level)", ["invalid YAML", "expected ',' or '}'"]),
    ("wrong section type", "sync: [customer]\n",
     8, "sync", ["expected a mapping", "found a list"]),
    ("webhooks listen", "sync: {customer: {}}\nwebhooks:\n  listen: 8080\n",
     10, "webhooks.listen", ["expected a string", "found 8080"]),
    ("webhooks listen format", "sync: {customer: {}}\nwebhooks:\n  listen: localhost\n",
     10, "webhooks.listen", ["expected host:port like 127.0.0.1:8080", "found 'localhost'"]),
    ("webhook section of unknown system", "sync: {customer: {}}\nwebhooks:\n  salesforce: {token: x}\n",
     10, "webhooks.salesforce", ["unknown key 'salesforce'", "fakecrm", "fakeerp"]),
    ("bad logging level", "sync: {customer: {}}\nlogging: {level: verbose}\n",
     9, "logging.level", ["'debug'", "found 'verbose'"]),
    ("dead letters attempts", "sync: {customer: {}}\ndead_letters:\n  max_attempts: 0\n",
     10, "dead_letters.max_attempts", ["expected greater than or equal to 1", "found 0"]),
    ("missing sync", "state: {}\n",
     1, "sync", ["missing required key 'sync'"]),
]


@pytest.mark.parametrize(("yaml_tail", "line", "path", "fragments"),
                         [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_each_mistake_names_line_path_expected_and_found(
        write_yaml: WriteYaml, config_model: type[Config], yaml_tail: str, line: int, path: str,
        fragments: list[str]) -> None:
    errors = _errors(write_yaml(HEAD + yaml_tail), config_model)
    assert len(errors) == 1, errors
    err = errors[0]
    text = str(err)
    assert err.line == line, text
    assert text.startswith(f"{err.file}:{line}:"), text
    assert f": {path}: " in text, text
    for fragment in fragments:
        assert fragment in err.message, text
    assert err.file.endswith("config.yaml")


CONNECTOR_CASES = [
    ("unknown connector", "crm:\n  connector: salesforce\n  token: x\n",
     2, "crm.connector", ["unknown connector 'salesforce'", "available: fakecrm, fakeerp"]),
    ("missing connector", "crm:\n  token: t\n",
     1, "crm.connector", ["missing required key 'connector' (one of: fakecrm, fakeerp)"]),
    ("extra key in connector settings", "crm:\n  connector: fakecrm\n  token: t\n  tokn: t\n",
     4, "crm.tokn", ["unknown key 'tokn'", "(did you mean 'token'?)", "client_secret"]),
    ("missing required setting", "crm:\n  connector: fakecrm\n",
     1, "crm.token", ["missing required key 'token'"]),
    ("connector setting out of range", "crm:\n  connector: fakecrm\n  token: t\n  page_size: 500\n",
     4, "crm.page_size", ["less than or equal to 200", "found 500"]),
    ("mapping file missing", "crm:\n  connector: fakecrm\n  token: t\n  mapping: maps/none.yaml\n",
     4, "crm.mapping", ["expected a mapping file", "maps/none.yaml"]),
]

ERP_AND_SYNC = """\
erp:
  connector: fakeerp
  url: https://erp.example.com
  api_key: k3y-value-2
sync: {customer: {}}
"""


@pytest.mark.parametrize(("head", "line", "path", "fragments"),
                         [pytest.param(*c[1:], id=c[0]) for c in CONNECTOR_CASES])
def test_connector_section_mistakes(write_yaml: WriteYaml, config_model: type[Config], head: str,
                                    line: int, path: str, fragments: list[str]) -> None:
    errors = _errors(write_yaml(head + ERP_AND_SYNC), config_model)
    assert len(errors) == 1, errors
    text = str(errors[0])
    assert errors[0].line == line, text
    assert f": {path}: " in text, text
    for fragment in fragments:
        assert fragment in text, text


def test_several_errors_reported_at_once_in_file_order(write_yaml: WriteYaml,
                                                       config_model: type[Config]) -> None:
    path = write_yaml("""\
        crm:
          connector: fakecrm
          token: ${HUBSPOT_TOKEN}
        erp:
          connector: fakeerp
          url: https://erp
          api_key: k
          colour: blue
        sync:
          customer:
            every: soon
            confirm: true
          widget: {}
        logging: {format: xml}
        """)
    errors = _errors(path, config_model, env={})
    summary = [(e.line, ".".join(map(str, e.path))) for e in errors]
    assert summary == [
        (3, "crm.token"),
        (8, "erp.colour"),
        (11, "sync.customer.every"),
        (12, "sync.customer.confirm"),
        (13, "sync.widget"),
        (14, "logging.format"),
    ]
    # the missing variable is reported once, not again as a wrong value
    assert "HUBSPOT_TOKEN is not set" in errors[0].message
    assert str(ConfigError(errors)).startswith("6 errors:")


# --------------------------------------------------------------------------------------------
# Secrets
# --------------------------------------------------------------------------------------------
def test_wrong_typed_token_value_never_appears(write_yaml: WriteYaml, config_model: type[Config]) -> None:
    path = write_yaml("""\
        crm:
          connector: fakecrm
          token: [9876543210123]
        erp:
          connector: fakeerp
          url: https://erp
          api_key: 55554444333
        sync: {customer: {}}
        """)
    errors = _errors(path, config_model)
    text = "\n".join(map(str, errors))
    assert [(e.line, e.path) for e in errors] == [(3, ("crm", "token")), (7, ("erp", "api_key"))]
    assert "expected a string, found ***" in errors[1].message
    assert "9876543210123" not in text
    assert "55554444333" not in text


def test_interpolated_secret_is_masked_in_every_message(write_yaml: WriteYaml,
                                                        config_model: type[Config]) -> None:
    # The token's value, from the environment, also lands in a non-secret field by mistake;
    # it must not appear there either.
    path = write_yaml("""\
        crm:
          connector: fakecrm
          token: ${TOKEN}
          page_size: ${TOKEN}
        erp:
          connector: fakeerp
          url: https://erp
          api_key: ok-key
        sync: {customer: {}}
        """)
    errors = _errors(path, config_model)
    assert [e.path for e in errors] == [("crm", "page_size")]
    assert "env-token-secret" not in str(errors[0])
    assert "found '***'" in errors[0].message


def test_file_secret_is_masked_even_in_a_non_secret_field(write_yaml: WriteYaml, tmp_path: Path,
                                                          config_model: type[Config]) -> None:
    (tmp_path / "db-url").write_text("not-a-number-secret\n", encoding="utf-8")
    path = write_yaml(HEAD.replace("k3y-value-2", "k") + "sync: {customer: {}}\n"
                      "dead_letters:\n  max_attempts: ${file:db-url}\n")
    errors = _errors(path, config_model)
    assert [e.path for e in errors] == [("dead_letters", "max_attempts")]
    assert "not-a-number-secret" not in str(errors[0])


def test_misspelled_secret_key_does_not_show_its_value(write_yaml: WriteYaml,
                                                       config_model: type[Config]) -> None:
    path = write_yaml(HEAD + "  apikey: sup3r-secret-key\nsync: {customer: {}}\n")
    errors = _errors(path, config_model)
    assert "unknown key 'apikey'" in errors[0].message
    assert "sup3r-secret-key" not in str(errors[0])


def test_password_in_state_url_is_masked(write_yaml: WriteYaml, config_model: type[Config]) -> None:
    path = write_yaml(HEAD + "sync: {customer: {}}\nstate:\n  url: postgresql://u:pg-pass-word@h/db\n"
                      "  pool: 5\n")
    errors = _errors(path, config_model)
    assert "pg-pass-word" not in str(errors[0])


def test_secret_values_lists_every_secret(write_yaml: WriteYaml, tmp_path: Path,
                                          config_model: type[Config]) -> None:
    (tmp_path / "hook").write_text("hook-secret\n", encoding="utf-8")
    path = write_yaml(HEAD + """\
sync: {customer: {}}
state: {url: "postgresql+psycopg://concord:db-password@db/concord"}
webhooks:
  fakecrm: {client_secret: "${file:hook}"}
""")
    config = load_config(path, ENV, model=config_model)
    assert sorted(config.secret_values()) == sorted(["t0ken-value-1", "k3y-value-2", "hook-secret", "db-password"])
    assert isinstance(config.webhooks.source("fakecrm").client_secret, SecretStr)  # type: ignore[union-attr]
    assert "t0ken-value-1" not in repr(config)


# --------------------------------------------------------------------------------------------
# Valid configs
# --------------------------------------------------------------------------------------------
def test_defaults_per_entity(write_yaml: WriteYaml, config_model: type[Config]) -> None:
    path = write_yaml(HEAD + "sync:\n  customer:\n  product: {}\n  order: {stages: [closedwon, won]}\n"
                      "  payment: {enabled: false}\n")
    config = load_config(path, {}, model=config_model)
    assert set(config.sync) == {"customer", "product", "order", "payment"}
    customer = config.sync["customer"]
    assert isinstance(customer, CustomerSync)
    assert (customer.direction, customer.conflict, customer.on_delete) == ("both", "newest_wins", "archive")
    assert (customer.every, customer.overlap) == (timedelta(minutes=5), timedelta(minutes=2))
    assert config.sync["product"].direction == "erp_to_crm"
    order = config.sync["order"]
    assert isinstance(order, OrderSync)
    assert (order.direction, order.confirm, order.credit_check, order.on_shortage) == (
        "crm_to_erp", True, True, "none")
    assert order.stages == ["closedwon", "won"]
    assert config.enabled_entities() == ["customer", "product", "order"]
    assert config.entity("stock_level") is None
    assert config.state.url == "sqlite:///concord.db"
    assert (config.webhooks.host, config.webhooks.port, config.webhooks.max_body) == ("127.0.0.1", 8080, 1048576)
    assert config.dead_letters.backoff_max == timedelta(hours=6)
    assert config.daemon.lease_ttl == timedelta(seconds=30)
    assert (config.logging.level, config.logging.format) == ("info", "auto")
    assert config.source_path == path.resolve()
    assert config.resolve_path("maps/x.yaml") == path.resolve().parent / "maps/x.yaml"


def test_owner_and_match_on_accept_extra_fields(write_yaml: WriteYaml, config_model: type[Config]) -> None:
    path = write_yaml(HEAD + "sync:\n  customer:\n    owner: {credit_limit: erp, extra.segment: crm}\n"
                      "    match_on: [email, extra.duns]\n")
    config = load_config(path, {}, model=config_model)
    assert config.sync["customer"].owner == {"credit_limit": "erp", "extra.segment": "crm"}
    assert config.sync["customer"].match_on == ["email", "extra.duns"]


def test_mapping_path_is_relative_to_the_config_file(write_yaml: WriteYaml, config_model: type[Config]) -> None:
    write_yaml("connector: fakecrm\nentities: {}\n", name="maps/crm.yaml")
    path = write_yaml(HEAD.replace("  token: t0ken-value-1\n", "  token: t\n  mapping: maps/crm.yaml\n")
                      + "sync: {customer: {}}\n")
    config = load_config(path, {}, model=config_model)
    assert config.resolve_path(config.crm.mapping or "") == path.parent.resolve() / "maps/crm.yaml"


def test_empty_file(write_yaml: WriteYaml, config_model: type[Config]) -> None:
    errors = _errors(write_yaml("# nothing\n"), config_model)
    assert "expected a mapping of sections" in errors[0].message
    assert "an empty file" in errors[0].message


@pytest.mark.parametrize(("text", "expected"), [
    ("30s", timedelta(seconds=30)), ("5m", timedelta(minutes=5)), ("1h", timedelta(hours=1)),
    ("1d", timedelta(days=1)), ("1h30m", timedelta(minutes=90)), (" 2m 10s ", timedelta(seconds=130)),
    ("500ms", timedelta(milliseconds=500)), ("1w", timedelta(weeks=1)),
])
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "5", "5 minutes", "m5", "5m x", "-5m", "1.5h", "5M!"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration like 5m or 30s"):
        parse_duration(text)


@pytest.mark.parametrize("seconds", [1, 59, 60, 90, 3600, 3661, 86400, 90061])
def test_format_duration_round_trips(seconds: int) -> None:
    assert parse_duration(format_duration(timedelta(seconds=seconds))) == timedelta(seconds=seconds)


def test_json_schema_describes_the_file(config_model: type[Config]) -> None:
    schema = config_json_schema(config_model)
    assert set(schema["properties"]) == {"state", "crm", "erp", "sync", "webhooks", "dead_letters", "daemon",
                                         "logging"}
    assert set(schema["required"]) == {"crm", "erp", "sync"}
    sync = schema["properties"]["sync"]
    assert set(sync["properties"]) == {"customer", "product", "order", "stock_level", "payment"}
    assert sync["additionalProperties"] is False
    order = schema["$defs"]["OrderSync"]["properties"]
    assert {"confirm", "credit_check", "on_shortage", "stages"} <= set(order)
    assert "confirm" not in schema["$defs"]["CustomerSync"]["properties"]
    assert schema["$defs"]["CustomerSync"]["properties"]["every"]["type"] == "string"
    tags = {d.get("properties", {}).get("connector", {}).get("const") for d in schema["$defs"].values()}
    assert {"fakecrm", "fakeerp"} <= tags

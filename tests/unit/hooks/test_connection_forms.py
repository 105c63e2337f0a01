"""The ``amc`` connection as users write it: ``AIRFLOW_CONN_AMC_DEFAULT`` in URI and JSON form, read by
Airflow itself and turned into client settings by the hook, with no HTTP call.

Each form either gives the values the user meant or fails naming the field and what is allowed,
never quoting a secret.
"""

from __future__ import annotations

from airflow_env import apply_airflow_test_env

apply_airflow_test_env()

import asyncio  # noqa: E402
import json  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import quote  # noqa: E402

import pytest  # noqa: E402

from airflow_provider_amc.client import AmcConfigError, AmcSettings  # noqa: E402
from airflow_provider_amc.hooks.amc import KNOWN_EXTRA_FIELDS, AmcHook  # noqa: E402

CLIENT_ID = "amzn1.application-oa2-client.0123abcd"
#: Every character that needs URL-encoding in a URI's password or query, and LwA's ``|``.
SECRET = "amzn1.oa2-cs.v1.a/b+c=d%e:f|g@h?#&"
REFRESH_TOKEN = "Atzr|IwEBI+/=x%y:z&w"
ADVERTISER = "ENTITY1AA1AA11AAA1"
MARKETPLACE = "ATVPDKIKX0DER"
EXTRA = {"refresh_token": REFRESH_TOKEN, "advertiser_id": ADVERTISER, "marketplace_id": MARKETPLACE}


def settings(monkeypatch: pytest.MonkeyPatch, value: str) -> AmcSettings:
    monkeypatch.setenv("AIRFLOW_CONN_AMC_DEFAULT", value)
    return AmcHook().settings


def json_conn(extra: Any = None, **fields: Any) -> str:
    conn = {"conn_type": "amc", "login": CLIENT_ID, "password": SECRET, **fields}
    conn["extra"] = EXTRA if extra is None else extra
    return json.dumps(conn)


def uri(
    host: str = "", query: dict[str, str] | None = None, login: str = CLIENT_ID, password: str = SECRET
) -> str:
    params = "&".join(f"{key}={quote(value, safe='')}" for key, value in (query or EXTRA).items())
    return f"amc://{quote(login, safe='')}:{quote(password, safe='')}@{host}/?{params}"


def refused(monkeypatch: pytest.MonkeyPatch, value: str) -> str:
    with pytest.raises(AmcConfigError) as caught:
        settings(monkeypatch, value)
    message = str(caught.value)
    assert message.startswith("amc connection 'amc_default' is not usable: "), message
    for secret in (SECRET, REFRESH_TOKEN, SECRET.strip(), REFRESH_TOKEN.strip()):
        assert secret not in message
    return message


def assert_identity(got: AmcSettings) -> None:
    assert got.client_id == CLIENT_ID
    assert got.client_secret.get_secret_value() == SECRET
    assert got.refresh_token.get_secret_value() == REFRESH_TOKEN
    assert (got.advertiser_id, got.marketplace_id) == (ADVERTISER, MARKETPLACE)


# ---- the URI form ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("host", "api", "token"),
    [
        ("", "https://advertising-api.amazon.com", "https://api.amazon.com/auth/o2/token"),
        ("advertising-api-eu.amazon.com", "https://advertising-api-eu.amazon.com", None),
        ("advertising-api-fe.amazon.com:443", "https://advertising-api-fe.amazon.com:443", None),
        (
            quote("https://advertising-api-eu.amazon.com", safe=""),
            "https://advertising-api-eu.amazon.com",
            None,
        ),
        (quote("http://127.0.0.1:8765", safe=""), "http://127.0.0.1:8765", None),
    ],
    ids=["empty-host", "eu-host-no-scheme", "fe-host-port", "eu-host-with-scheme", "emulator-http"],
)
def test_uri_form_with_url_encoded_secrets(
    monkeypatch: pytest.MonkeyPatch, host: str, api: str, token: str | None
) -> None:
    got = settings(monkeypatch, uri(host))
    assert_identity(got)
    assert got.api_base_url == api
    assert got.token_endpoint == (token or "https://api.amazon.com/auth/o2/token")  # LwA tokens are global


def test_uri_form_picks_the_region_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    got = settings(monkeypatch, uri(query={**EXTRA, "region": "eu"}))
    assert (got.region, got.api_base_url) == ("EU", "https://advertising-api-eu.amazon.com")
    assert got.token_endpoint == "https://api.amazon.co.uk/auth/o2/token"


def test_uri_form_without_a_path_and_with_a_raw_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    query = f"refresh_token=Atzr|abc&advertiser_id={ADVERTISER}&marketplace_id={MARKETPLACE}"
    got = settings(monkeypatch, f"amc://{quote(CLIENT_ID)}:{quote(SECRET, safe='')}@?{query}")
    assert got.refresh_token.get_secret_value() == "Atzr|abc"
    assert got.client_secret.get_secret_value() == SECRET


def test_uri_form_strings_for_numbers_and_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    query = {
        **EXTRA,
        "timeout": "12.5",
        "max_attempts": "3",
        "backoff_max": "7",
        "trust_env": "false",
        "verify": "False",
    }
    got = settings(monkeypatch, uri(query=query))
    assert (got.timeout, got.max_attempts, got.backoff_max) == (12.5, 3, 7.0)
    assert (got.trust_env, got.verify) == (False, False)


def test_uri_form_unknown_extra_names_it_and_the_known_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    message = refused(monkeypatch, uri(query={**EXTRA, "advertizer_id": ADVERTISER}))
    assert "unknown extra field(s) 'advertizer_id'" in message
    assert "the known extra fields are " + ", ".join(KNOWN_EXTRA_FIELDS) in message


# ---- the JSON form -----------------------------------------------------------------------------
@pytest.mark.parametrize("extra", [EXTRA, json.dumps(EXTRA)], ids=["object", "json-string"])
def test_json_form_extra_as_object_or_string(monkeypatch: pytest.MonkeyPatch, extra: Any) -> None:
    assert_identity(settings(monkeypatch, json_conn(extra)))


@pytest.mark.parametrize(
    "host",
    [
        "advertising-api.amazon.com",
        "https://advertising-api.amazon.com/",
        " https://advertising-api.amazon.com\n",
    ],
)
def test_json_form_host_with_or_without_scheme(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    assert settings(monkeypatch, json_conn(host=host)).api_base_url == "https://advertising-api.amazon.com"


def test_ui_form_fields_left_empty_are_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """The UI stores untouched fields as null or "" (also under the ``extra__amc__`` prefix)."""
    empty: dict[str, Any] = {key: None for key in KNOWN_EXTRA_FIELDS} | {"instance_id": "", "timeout": ""}
    prefixed = {f"extra__amc__{key}": value for key, value in EXTRA.items()}
    got = settings(monkeypatch, json_conn({**empty, **prefixed}))
    assert_identity(got)
    assert (got.region, got.timeout, got.verify, got.trust_env, got.instance_id) == (
        "NA",
        30.0,
        True,
        True,
        None,
    )


# ---- copy-paste: surrounding whitespace, numbers for ids -----------------------------------------
def test_surrounding_whitespace_and_newlines_are_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = {
        "refresh_token": REFRESH_TOKEN + "\n",
        "advertiser_id": f" {ADVERTISER}\n",
        "marketplace_id": MARKETPLACE + " ",
        "instance_id": "\tamcr1aaaa1a\r\n",
        "region": " eu\n",
        "token_url": " https://api.amazon.co.uk/auth/o2/token\n",
    }
    got = settings(monkeypatch, json_conn(extra, login=f" {CLIENT_ID}\n", password=SECRET + "\n"))
    assert_identity(got)
    assert (got.instance_id, got.region) == ("amcr1aaaa1a", "EU")
    assert got.token_endpoint == "https://api.amazon.co.uk/auth/o2/token"


def test_surrounding_whitespace_is_dropped_in_the_uri_form(monkeypatch: pytest.MonkeyPatch) -> None:
    query = {**EXTRA, "refresh_token": REFRESH_TOKEN + "\n", "advertiser_id": f" {ADVERTISER}\r\n"}
    assert_identity(settings(monkeypatch, uri(query=query, password=SECRET + "\n")))


def test_numbers_for_ids_are_read_as_text(monkeypatch: pytest.MonkeyPatch) -> None:
    got = settings(monkeypatch, json_conn({**EXTRA, "advertiser_id": 1234567890, "instance_id": 42}))
    assert (got.advertiser_id, got.instance_id) == ("1234567890", "42")


@pytest.mark.parametrize("field", ["advertiser_id", "marketplace_id", "instance_id"])
@pytest.mark.parametrize("value", ["ENTITY 1", "amc/../x", "ab\ncd", 1.5, True])
def test_an_id_that_cannot_be_one_is_refused_naming_the_rule(
    monkeypatch: pytest.MonkeyPatch, field: str, value: Any
) -> None:
    message = refused(monkeypatch, json_conn({**EXTRA, field: value}))
    assert f"{field}: " in message
    assert "letters, digits, '.', '-' or '_'" in message


@pytest.mark.parametrize(
    ("field", "where"),
    [
        ("refresh_token", "refresh_token"),
        ("password", "client_secret (the connection's password)"),
        ("login", "client_id (the connection's login)"),
    ],
)
def test_a_line_break_inside_a_credential_is_refused_without_quoting_it(
    monkeypatch: pytest.MonkeyPatch, field: str, where: str
) -> None:
    broken = {
        "refresh_token": "Atzr|IwEBI\nsecond-half",
        "password": "amzn1.oa2-cs\nv1",
        "login": "amzn1.app\nx",
    }[field]
    if field == "refresh_token":
        value = json_conn({**EXTRA, "refresh_token": broken})
    else:
        value = json_conn(**{field: broken})
    message = refused(monkeypatch, value)
    assert f"{where}: must not contain whitespace or control characters" in message
    assert "second-half" not in message and "oa2-cs" not in message


# ---- flags -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("False", False),
        (" no\n", False),
        ("yes", True),
        ("0", False),
        ("1", True),
        (0, False),
        (True, True),
    ],
)
@pytest.mark.parametrize("field", ["verify", "trust_env"])
def test_flags_accept_the_usual_spellings(
    monkeypatch: pytest.MonkeyPatch, field: str, value: Any, expected: bool
) -> None:
    assert getattr(settings(monkeypatch, json_conn({**EXTRA, field: value})), field) is expected


@pytest.mark.parametrize("field", ["verify", "trust_env"])
def test_a_flag_that_is_none_names_the_allowed_values(monkeypatch: pytest.MonkeyPatch, field: str) -> None:
    message = refused(monkeypatch, json_conn({**EXTRA, field: "maybe"}))
    assert f"{field}: " in message and "true or false" in message and "'maybe'" in message


def test_verify_naming_a_missing_bundle_says_what_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    message = refused(monkeypatch, json_conn({**EXTRA, "verify": "/no/such/ca.pem"}))
    assert "verify: " in message and "'/no/such/ca.pem'" in message
    assert "must be true or false" in message and "or the path of an existing CA bundle" in message


# ---- an extra that is no JSON object -----------------------------------------------------------
@pytest.mark.parametrize("extra", ["[1, 2]", '"refresh_token"', "refresh_token=Atzr|x", "{'region': 'NA'}"])
def test_an_extra_that_is_no_json_object_is_said_so(monkeypatch: pytest.MonkeyPatch, extra: str) -> None:
    message = refused(monkeypatch, json_conn(extra))
    assert "the extra must be a JSON object" in message
    assert "Atzr|x" not in message


# ---- the Host field ----------------------------------------------------------------------------
@pytest.mark.parametrize("host", [" ", "\n", " advertising-api.amazon.com\n"])
def test_a_blank_or_padded_host_without_scheme(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    assert settings(monkeypatch, json_conn(host=host)).api_base_url == "https://advertising-api.amazon.com"


@pytest.mark.parametrize("schema", ["http", "HTTPS", ""])
def test_the_schema_field_is_the_scheme_of_a_host_without_one(
    monkeypatch: pytest.MonkeyPatch, schema: str
) -> None:
    got = settings(monkeypatch, json_conn(host="127.0.0.1", schema=schema, port=8765))
    assert got.api_base_url == f"{schema.lower() or 'https'}://127.0.0.1:8765"


def test_a_uri_path_that_is_no_scheme_is_refused_naming_the_schema_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``amc://id:secret@host:8765/amc?...``: Airflow reads the path as the Schema field."""
    message = refused(monkeypatch, uri("127.0.0.1:8765").replace("/?", "/amc?"))
    assert "schema 'amc'" in message and "http or https" in message


# ---- a variable Airflow cannot parse -----------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "says"),
    [
        (uri().replace(quote(SECRET, safe=""), "ab/cd-s3cr3t-part"), "URL-encode"),
        (uri().replace(quote(SECRET, safe=""), "ab#cd-s3cr3t-part"), "URL-encode"),
        ('{"conn_type": "amc", "password": "ab-s3cr3t-part", ', "it is not valid JSON"),
    ],
    ids=["uri-raw-slash", "uri-raw-hash", "json-cut"],
)
def test_an_unreadable_connection_variable_is_named_not_reported_missing(
    monkeypatch: pytest.MonkeyPatch, value: str, says: str
) -> None:
    """Airflow swallows the parse error and says the connection "isn't defined"."""
    monkeypatch.setenv("AIRFLOW_CONN_AMC_DEFAULT", value)
    for read in (lambda: AmcHook().settings, lambda: asyncio.run(AmcHook().aget_settings())):
        with pytest.raises(AmcConfigError) as caught:
            read()
        message = str(caught.value)
        assert "AIRFLOW_CONN_AMC_DEFAULT is set but Airflow cannot read it" in message
        assert says in message, message
        assert "s3cr3t" not in message


def test_a_connection_that_is_nowhere_stays_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.exceptions import AirflowNotFoundException

    monkeypatch.delenv("AIRFLOW_CONN_AMC_NOWHERE", raising=False)
    with pytest.raises(AirflowNotFoundException):
        AmcHook("amc_nowhere").settings  # noqa: B018


def test_a_raw_plus_in_a_uri_query_is_refused_saying_how_to_write_it(monkeypatch: pytest.MonkeyPatch) -> None:
    query = f"refresh_token=Atzr|IwEB+rest&advertiser_id={ADVERTISER}&marketplace_id={MARKETPLACE}"
    message = refused(monkeypatch, f"amc://{quote(CLIENT_ID)}:{quote(SECRET, safe='')}@/?{query}")
    assert "refresh_token: must not contain whitespace" in message and "write %2B" in message


def test_json_with_extras_at_the_top_level_names_them(monkeypatch: pytest.MonkeyPatch) -> None:
    value = json.dumps({"conn_type": "amc", "login": CLIENT_ID, "password": SECRET, **EXTRA})
    monkeypatch.setenv("AIRFLOW_CONN_AMC_DEFAULT", value)
    message = refused(monkeypatch, value)
    assert "'advertiser_id', 'marketplace_id', 'refresh_token' are not connection fields" in message
    assert 'put them in "extra"' in message


@pytest.mark.parametrize(
    "field", ["advertiser_id", "marketplace_id", "instance_id", "region", "verify", "trust_env"]
)
@pytest.mark.parametrize("pasted", [REFRESH_TOKEN, "Atza|IwEBIaccess-token", SECRET])
def test_a_credential_pasted_into_another_field_is_not_quoted(
    monkeypatch: pytest.MonkeyPatch, field: str, pasted: str
) -> None:
    message = refused(monkeypatch, json_conn({**EXTRA, field: pasted}))
    assert f"{field}: " in message
    assert "looks like an LwA token or client secret" in message
    assert pasted not in message and pasted[5:15] not in message


@pytest.mark.parametrize("field", ["host", "token_url"])
def test_a_credential_pasted_into_a_url_field_is_not_quoted(
    monkeypatch: pytest.MonkeyPatch, field: str
) -> None:
    value = (
        json_conn({**EXTRA, "token_url": REFRESH_TOKEN})
        if field == "token_url"
        else json_conn(host=REFRESH_TOKEN)
    )
    message = refused(monkeypatch, value)
    assert "looks like an LwA token or client secret" in message and REFRESH_TOKEN[5:15] not in message


def test_login_and_password_swapped_is_said_without_quoting(monkeypatch: pytest.MonkeyPatch) -> None:
    message = refused(monkeypatch, json_conn(login=SECRET, password=CLIENT_ID))
    assert "client_id (the connection's login): looks like an LwA token or client secret" in message
    assert SECRET[12:24] not in message


# ---- the UI's Test button: the form's connection reaches the hook as Connection.get_uri() ---------
@pytest.mark.parametrize("host", [None, "http://127.0.0.1:8765", "https://advertising-api-eu.amazon.com"])
@pytest.mark.parametrize("typed", [True, False], ids=["typed-extra", "text-extra"])
def test_the_test_buttons_uri_round_trip_keeps_every_field(
    monkeypatch: pytest.MonkeyPatch, host: str | None, typed: bool
) -> None:
    from airflow.models import Connection

    extra: dict[str, Any] = {**EXTRA, "region": "EU", "verify": "false"}
    if typed:
        extra |= {"timeout": 12, "trust_env": False, "proxies": {"https": "http://u:p%40ss@proxy:3128"}}
    form = Connection(
        conn_id="ui_form",
        conn_type="amc",
        host=host,
        login=CLIENT_ID,
        password=SECRET,
        extra=json.dumps(extra),
    )
    got = settings(monkeypatch, form.get_uri())
    assert_identity(got)
    assert got.api_base_url == (host or "https://advertising-api-eu.amazon.com")
    assert (got.timeout, got.trust_env, got.verify) == (
        (12.0, False, False) if typed else (30.0, True, False)
    )


# ---- tuning numbers ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("timeout", "30s", "a number of seconds greater than 0"),
        ("timeout", 0, "a number of seconds greater than 0"),
        ("max_attempts", 2.5, "a whole number from 1 to 20"),
        ("max_attempts", "50", "a whole number from 1 to 20"),
        ("backoff_base", "-1", "a number of seconds, 0 or more"),
        ("backoff_max", "1m", "a number of seconds, 0 or more"),
    ],
)
def test_a_bad_tuning_number_names_the_allowed_values(
    monkeypatch: pytest.MonkeyPatch, field: str, value: Any, allowed: str
) -> None:
    message = refused(monkeypatch, json_conn({**EXTRA, field: value}))
    assert f"{field}: must be {allowed}, got {value!r}" in message


def test_console_url_template_pasted_with_a_line_break(monkeypatch: pytest.MonkeyPatch) -> None:
    template = "https://console.example/instances/{instance_id}/executions/{execution_id}"
    monkeypatch.setenv(
        "AIRFLOW_CONN_AMC_DEFAULT", json_conn({**EXTRA, "console_url_template": f" {template}\n"})
    )
    assert AmcHook().console_url_template == template


def test_proxies_pasted_with_whitespace(monkeypatch: pytest.MonkeyPatch) -> None:
    proxies = {" https ": " http://proxy.example:3128\n"}
    got = settings(monkeypatch, json_conn({**EXTRA, "proxies": proxies}))
    assert got.proxies == {"https": "http://proxy.example:3128"}

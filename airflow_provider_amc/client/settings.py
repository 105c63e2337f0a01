"""Client settings: credentials, identities, region endpoints and the retry/timeout policy."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
)
from pydantic.fields import FieldInfo

from airflow_provider_amc.client.errors import AmcConfigError
from airflow_provider_amc.client.ids import is_valid_id


@dataclass(frozen=True)
class RegionEndpoints:
    """The Ads API base URL and the Login-with-Amazon token endpoint of one region."""

    api_base_url: str
    token_url: str


#: AMC regions (amc-api.md §1.1 and §1.2).
REGIONS: dict[str, RegionEndpoints] = {
    "NA": RegionEndpoints("https://advertising-api.amazon.com", "https://api.amazon.com/auth/o2/token"),
    "EU": RegionEndpoints("https://advertising-api-eu.amazon.com", "https://api.amazon.co.uk/auth/o2/token"),
    "FE": RegionEndpoints("https://advertising-api-fe.amazon.com", "https://api.amazon.co.jp/auth/o2/token"),
}


def _config_error(exc: ValidationError, model: str) -> AmcConfigError:
    """Turn a pydantic ValidationError into one AmcConfigError naming every bad field, each once.

    pydantic calls a custom ``__init__`` from ``model_validate``: an AmcConfigError raised there
    comes back wrapped in a ValidationError and is passed through as it is (not wrapped again).
    """
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        inner = (error.get("ctx") or {}).get("error")
        if isinstance(inner, AmcConfigError) and len(exc.errors()) == 1:
            return inner
        message = str(error["msg"]).removeprefix("Value error, ")
        field = ".".join(str(part) for part in error["loc"])
        problems.append(f"{field}: {message}" if field else message)
    return AmcConfigError(f"Invalid {model}: " + "; ".join(problems))


class ValidatedInput(BaseModel):
    """A pydantic model whose validation failures raise :class:`AmcConfigError` (a ValueError)."""

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _config_error(exc, type(self).__name__) from None

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Self:
        try:
            return super().model_validate(obj, **kwargs)
        except ValidationError as exc:
            raise _config_error(exc, cls.__name__) from None


#: Whitespace or a control character: never part of an LwA credential (a pasted line break is).
_BLANK_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")
#: How flags are spelled in a connection's extra (the UI, a URI query, JSON).
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _strip(value: Any) -> Any:
    """Text without surrounding whitespace (values pasted from a console often carry a newline)."""
    if isinstance(value, SecretStr):
        return SecretStr(value.get_secret_value().strip())
    return value.strip() if isinstance(value, str) else value


def _flag(value: Any) -> bool | None:
    """``value`` as a boolean when it is one in any usual spelling, else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE + _FALSE:
            return word in _TRUE
    return None


#: How LwA tokens and client secrets start: such a value in another field is not quoted in an error.
_CREDENTIAL_MARKS = ("Atzr|", "Atza|", "amzn1.oa2-cs.")


def _shown(value: Any) -> str:
    """``value`` quoted for an error message, unless it looks like a credential pasted in the wrong field."""
    if isinstance(value, str) and any(mark in value for mark in _CREDENTIAL_MARKS):
        return "a value that looks like an LwA token or client secret (not shown; wrong field?)"
    return repr(value)


def _check_url(field: str, value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or _shown(value) != repr(value):
        raise ValueError(f"{field} must be an http(s) URL such as https://host[:port], got {_shown(value)}")
    return value.rstrip("/")


def _allowed_numbers(field: FieldInfo) -> str:
    """The values a numeric field allows, read from its bounds: 'a whole number from 1 to 20'."""
    kind = "a whole number" if field.annotation is int else "a number of seconds"
    bounds = {
        type(item).__name__: getattr(item, type(item).__name__.lower())
        for item in field.metadata
        if type(item).__name__ in ("Ge", "Gt", "Le")
    }
    if "Ge" in bounds and "Le" in bounds:
        return f"{kind} from {bounds['Ge']} to {bounds['Le']}"
    if "Gt" in bounds:
        return f"{kind} greater than {bounds['Gt']}"
    return f"{kind}, {bounds['Ge']} or more" if "Ge" in bounds else kind


class AmcSettings(ValidatedInput):
    """Everything the client needs to talk to AMC. Secrets are :class:`SecretStr` (hidden in repr)."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    refresh_token: SecretStr
    advertiser_id: str = Field(min_length=1)
    marketplace_id: str = Field(min_length=1)
    region: str = "NA"
    host: str | None = None
    token_url: str | None = None
    instance_id: str | None = None
    timeout: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=5, ge=1, le=20)
    backoff_base: float = Field(default=1.0, ge=0)
    backoff_max: float = Field(default=60.0, ge=0)
    #: TLS verification: True (default CA bundle), False (off) or the path of a CA bundle file or
    #: directory. Named and read as ``HttpHook``'s ``verify`` extra; see ``client.transport``.
    verify: bool | str = True
    #: Proxies by scheme (``{"https": "http://proxy:3128"}``), as ``requests``' ``proxies``.
    proxies: dict[str, str] | None = Field(default=None, repr=False)  # may hold proxy credentials
    #: Honour the environment's proxy variables (``HTTPS_PROXY``, ``NO_PROXY``...) and CA bundle
    #: variables (``REQUESTS_CA_BUNDLE``), on the worker and in the triggerer alike.
    trust_env: bool = True

    allowed_regions: ClassVar[tuple[str, ...]] = tuple(REGIONS)

    @field_validator("region", mode="before")
    @classmethod
    def _region(cls, value: Any) -> str:
        region = str(value).strip().upper()
        if region not in REGIONS:
            raise ValueError(
                f"region {_shown(value)} is not supported: allowed values are {', '.join(REGIONS)}"
            )
        return region

    @field_validator("client_id", "client_secret", "refresh_token", "host", "token_url", mode="before")
    @classmethod
    def _stripped(cls, value: Any) -> Any:
        return _strip(value)

    @field_validator("client_id", "client_secret", "refresh_token")
    @classmethod
    def _credential(cls, value: str | SecretStr) -> str | SecretStr:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not text:
            raise ValueError("must not be empty")
        if isinstance(value, str) and _shown(value) != repr(value):  # client_id: the secret, swapped?
            raise ValueError(
                "looks like an LwA token or client secret (not shown): the client id is "
                "amzn1.application-oa2-client.…; the client secret goes in client_secret "
                "(the connection's Password)"
            )
        if _BLANK_OR_CONTROL.search(text):  # the value is not quoted: it may be a secret
            raise ValueError(
                "must not contain whitespace or control characters (a pasted line break? in a URI, "
                "'+' reads as a space: write %2B)"
            )
        return value

    @field_validator("advertiser_id", "marketplace_id", "instance_id", mode="before")
    @classmethod
    def _id(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # a JSON number: the same id
        value = _strip(value)
        if value is None or value == "":
            return value
        if not is_valid_id(value):
            raise ValueError(f"{_shown(value)} is not a valid id: use 1-200 letters, digits, '.', '-' or '_'")
        return value

    @field_validator("host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        return _check_url("host", value)

    @field_validator("token_url")
    @classmethod
    def _token_url(cls, value: str | None) -> str | None:
        return _check_url("token_url", value)

    @field_validator("instance_id")
    @classmethod
    def _instance_id(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("timeout", "max_attempts", "backoff_base", "backoff_max", mode="wrap")
    @classmethod
    def _tuning(cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        try:
            return handler(value)
        except ValidationError:
            field = cls.model_fields[str(info.field_name)]
            raise ValueError(f"must be {_allowed_numbers(field)}, got {_shown(value)}") from None

    @field_validator("verify", mode="before")
    @classmethod
    def _verify(cls, value: Any) -> bool | str:
        flag = _flag(value)
        if flag is not None:
            return flag
        if isinstance(value, str) and value.strip() and os.path.exists(value.strip()):
            return value.strip()
        raise ValueError(
            "must be true or false (also yes/no, on/off, 1/0) or the path of an existing CA bundle "
            f"file or directory, got {_shown(value)}"
        )

    @field_validator("trust_env", mode="before")
    @classmethod
    def _trust_env(cls, value: Any) -> bool:
        flag = _flag(value)
        if flag is None:
            raise ValueError(f"must be true or false (also yes/no, on/off, 1/0), got {_shown(value)}")
        return flag

    @field_validator("proxies", mode="before")
    @classmethod
    def _proxies(cls, value: Any) -> dict[str, str] | None:
        if value is None or value == {}:
            return None
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                value = None
        if not isinstance(value, dict):
            raise ValueError('proxies must be a mapping such as {"https": "http://proxy:3128"}')
        proxies = {str(k).strip(): str(v).strip() for k, v in value.items()}  # pasted with whitespace
        for scheme, proxy in proxies.items():
            parts = urlsplit(str(proxy))
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(
                    f"proxies[{scheme!r}] must be an http(s) proxy URL such as http://proxy:3128 "
                    "(SOCKS proxies are not supported by the triggerer's HTTP client)"
                )
        return proxies

    @property
    def api_base_url(self) -> str:
        """The AMC API base URL: ``host`` when given, else the region's Ads API host."""
        return self.host or REGIONS[self.region].api_base_url

    @property
    def token_endpoint(self) -> str:
        """The LwA token endpoint: ``token_url`` when given, else the region's LwA host."""
        return self.token_url or REGIONS[self.region].token_url

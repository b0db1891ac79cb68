"""Validated inputs of the catalog's write operations (pydantic models).

Every write (register, site, replica, token) goes through one of these models first, so
bad input is refused with a message naming the field before any SQL runs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from npfm.events.errors import NpfmError

NAME = r"^[A-Za-z0-9][A-Za-z0-9._:@+-]*$"  # site and token names: no spaces, quotes or /
SCOPES = ("register", "replica", "site", "verify", "curate", "admin")
URL_SCHEMES = ("file://", "http://", "https://", "root://", "davs://", "s3://", "rucio://")


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class RegisterInput(_Input):
    """``npfm catalog register PATH``: an existing file or directory."""

    path: Path

    @field_validator("path")
    @classmethod
    def _exists(cls, value: Path) -> Path:
        if not value.exists():
            raise ValueError(f"{value} does not exist")
        return value


class SiteInput(_Input):
    """A storage endpoint: name, URL prefix, kind and priority (lower is preferred)."""

    name: str = Field(min_length=1, max_length=256, pattern=NAME)
    url_prefix: str = Field(min_length=1, max_length=2048)
    kind: Literal["posix", "http", "rucio"] = "posix"
    priority: int = Field(default=100, ge=0, le=1_000_000)
    enabled: bool = True

    @field_validator("url_prefix")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not value.startswith(URL_SCHEMES):
            raise ValueError(f"URL must start with one of {', '.join(URL_SCHEMES)}")
        return value


class ReplicaInput(_Input):
    """A copy of a catalogued file (by dataset and relative path) at a site."""

    dataset: str = Field(min_length=1, max_length=256)  # name, id or manifest sha256
    path: str = Field(min_length=1, max_length=1024)  # relative path inside the dataset
    site: str = Field(min_length=1, max_length=256, pattern=NAME)
    url: str = Field(min_length=1, max_length=2048)
    adler32: str | None = Field(default=None, pattern=r"^[0-9a-f]{8}$")
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not value.startswith(URL_SCHEMES):
            raise ValueError(f"URL must start with one of {', '.join(URL_SCHEMES)}")
        return value


class TokenInput(_Input):
    """A new API token: a unique name and one or more scopes."""

    name: str = Field(min_length=1, max_length=128, pattern=NAME)
    scopes: tuple[Literal["register", "replica", "site", "verify", "curate", "admin"], ...] = (
        Field(min_length=1))


class ResultInput(BaseModel):
    """One entry of a results JSON's ``results`` list (unknown keys go to ``details``)."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=256)
    task: str = Field(min_length=1, max_length=256)
    metric: str = Field(min_length=1, max_length=128)
    value: float
    lo: float | None = None
    hi: float | None = None
    seeds: list[int] = Field(default_factory=list)
    checkpoint_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    dataset_manifest_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    config: dict[str, Any] = Field(default_factory=dict)


class ShardInput(BaseModel):
    """One ``shards`` entry of a corpus manifest."""

    model_config = ConfigDict(extra="allow")

    path: str = Field(min_length=1, max_length=1024)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)
    events: int = Field(ge=0)

    @field_validator("path")
    @classmethod
    def _inside(cls, value: str) -> str:
        if value.startswith("/") or ".." in Path(value).parts:
            raise ValueError("shard path must be relative and stay inside the corpus")
        return value


class ManifestInput(BaseModel):
    """The fields of a corpus ``manifest.json`` that the catalog reads."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=256)
    schema_version: int
    events: int = Field(ge=0)
    hits: int = Field(ge=0)
    created: str = Field(max_length=64)
    citation: dict[str, Any] = Field(default_factory=dict)
    shards: list[ShardInput]


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], where: str, **values: Any) -> M:
    """``model(**values)``, turning a ValidationError into a one-line NpfmError."""
    try:
        return model(**values)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or model.__name__
        message = re.sub(r"^Value error, ", "", first["msg"])
        raise NpfmError(f"{where}: field {field}", message, f"give a valid {field}") from None

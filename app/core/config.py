"""Service settings: the only place that reads the environment (prefix ``ONEPASS_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Typed settings; every field can be set as ``ONEPASS_<FIELD>`` or passed to the constructor."""

    model_config = SettingsConfigDict(env_prefix="ONEPASS_", env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("var")

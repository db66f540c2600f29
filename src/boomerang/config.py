"""One settings tree for the whole process; nothing else reads os.environ."""

from __future__ import annotations

from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class IngestSettings(BaseModel):
    """Limits of the tracking API (Segment's own limits where it has them)."""

    max_batch_bytes: int = 500 * 1024
    max_batch_events: int = 2500
    max_message_bytes: int = 32 * 1024
    max_future_seconds: int = 24 * 3600
    earliest_timestamp: datetime = datetime(1990, 1, 1, tzinfo=timezone.utc)
    flush_interval_seconds: float = 1.0
    flush_chunk_rows: int = 50_000
    process_chunk_rows: int = 2_000  # the operational store is locked while a chunk is processed


class Settings(BaseSettings):
    """Boomerang's configuration, read from BOOMERANG_* variables (nested with __)."""

    model_config = SettingsConfigDict(env_prefix="BOOMERANG_", env_nested_delimiter="__")

    home: Path = Path("boomerang-data")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the operational store; SQLite in home when unset"
    )
    host: str = "127.0.0.1"
    port: int = 8600
    duckdb_lock_timeout_seconds: float = 60.0
    segments_refresh_minutes: float = Field(
        default=5.0, description="how often serve recomputes segments whose membership changes with time alone")
    ingest: IngestSettings = IngestSettings()

    @cached_property
    def sql_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'boomerang.sqlite').resolve()}"

    @cached_property
    def events_path(self) -> Path:
        return (self.home / "events.duckdb").resolve()

"""One settings tree for the whole process; nothing else reads os.environ."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from boomerang.core.vocab import CHANNELS


class IngestSettings(BaseModel):
    """Limits of the tracking API (Segment's own limits where it has them)."""

    max_batch_bytes: int = 500 * 1024
    max_batch_events: int = 2500
    max_message_bytes: int = 32 * 1024
    max_future_seconds: int = 24 * 3600
    earliest_timestamp: datetime = datetime(1990, 1, 1, tzinfo=UTC)
    flush_interval_seconds: float = 1.0
    flush_chunk_rows: int = 50_000
    process_chunk_rows: int = 2_000  # the operational store is locked while a chunk is processed
    dedup_window_hours: float = Field(
        default=24,
        gt=0,
        description="a messageId seen within this many hours is a duplicate, whichever way it came (Segment "
        "keeps at least 24 hours of them); older ones are forgotten every few minutes",
    )
    dedup_prune_chunk_rows: int = Field(default=10_000, ge=1, description="forgotten message ids per transaction")


class FrequencyCap(BaseModel):
    """At most `count` marketing messages in any `days` days."""

    count: int = Field(ge=1)
    days: float = Field(gt=0)


class GuardSettings(BaseModel):
    """The rules every outgoing message passes (boomerang.messaging.guards); BOOMERANG_GUARDS__... to change."""

    global_control_share: float = Field(default=0.05, ge=0, lt=1, description="customers sent no marketing at all")
    duplicate_window_hours: float = Field(default=24, ge=0, description="the same template again within: suppressed")
    priority_gap_hours: float = Field(default=24, ge=0, description="promotional after triggered/transactional within")
    caps: dict[str, FrequencyCap] = Field(
        default_factory=lambda: {
            "all": FrequencyCap(count=3, days=7),
            "email": FrequencyCap(count=2, days=7),
            "sms": FrequencyCap(count=2, days=7),
            "telegram": FrequencyCap(count=2, days=7),
            "webpush": FrequencyCap(count=2, days=7),
        },
        description="marketing messages per customer: across channels ('all') and per channel",
    )
    quiet_start: str = Field(default="21:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="local time")
    quiet_end: str = Field(default="09:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="equal to start: none")

    @field_validator("caps")
    @classmethod
    def _cap_names(cls, caps: dict[str, FrequencyCap]) -> dict[str, FrequencyCap]:
        unknown = sorted(set(caps) - {"all", *CHANNELS})
        if unknown:
            raise ValueError(f"unknown channel {unknown[0]!r}; use all or one of {', '.join(CHANNELS)}")
        return caps

    @property
    def longest_window(self) -> float:
        """Hours of history the guards look at."""
        return max([self.duplicate_window_hours, self.priority_gap_hours, *(c.days * 24 for c in self.caps.values())])


class MessagingSettings(BaseModel):
    """What messages say about the shop and how long things keep; BOOMERANG_MESSAGING__... to change."""

    shop_name: str = "Boomerang Shop"
    shop_url: str = Field(default="https://shop.example.com", pattern=r"^https?://")
    inapp_days: int = Field(default=30, ge=1, description="an in-app message disappears after")
    sending_timeout_minutes: float = Field(
        default=10, gt=0, description="a message left `sending` by a crashed worker is failed, not sent twice"
    )
    link_domains: list[str] = Field(
        default_factory=list,
        description="hosts besides the shop's own that tracked links may lead to (a CDN, a second shop); a link "
        "a template author wrote in the template always may",
    )


class TelegramSettings(BaseModel):
    """How `boomerang serve` receives the bot's updates; BOOMERANG_TELEGRAM__... to change. The bot itself (its
    token, the webhook secret) is a channel setting: `boomerang channels set telegram bot token=...`."""

    poll_in_serve: bool = Field(
        default=True, description="serve long-polls Telegram for the bot's updates while a bot is set and no webhook is"
    )


class CatalogSettings(BaseModel):
    """Who hears of a product's changes (orchestration.catalog_signals); BOOMERANG_CATALOG__... to change."""

    interest_days: int = Field(
        default=30,
        ge=1,
        le=365,
        description="a customer who viewed, carted or wish-listed a product within this many days hears that "
        "it is back in stock or cheaper",
    )


class DashboardSettings(BaseModel):
    """How long a dashboard login lasts and how many wrong passwords it takes; BOOMERANG_DASHBOARD__... to change."""

    session_idle_minutes: float = Field(default=60, gt=0, description="a session unused this long ends")
    session_max_hours: float = Field(default=12, gt=0, description="a session ends this long after logging in")
    login_failures_per_user: int = Field(
        default=5, ge=1, description="wrong passwords for one username within the window before its logins pause"
    )
    login_failures_per_ip: int = Field(
        default=20, ge=1, description="wrong passwords from one address within the window before its logins pause"
    )
    login_window_minutes: float = Field(
        default=15, gt=0, description="wrong passwords count this long; a paused login opens again after it"
    )


class TierBenefits(BaseModel):
    """What a loyalty tier gives besides its multiplier (templates and guards read them)."""

    free_shipping: bool = False
    birthday_gift: str | None = Field(default=None, max_length=200)


class TierSettings(BaseModel):
    """A loyalty tier: reached with `min_spend` paid or `min_orders` orders over the rolling period (either
    qualifies; 0 is no threshold, both 0: everyone)."""

    name: str = Field(min_length=1, max_length=40)
    min_spend: float = Field(default=0, ge=0)
    min_orders: int = Field(default=0, ge=0)
    multiplier: float = Field(default=1.0, ge=0, le=10, description="of the cashback an order earns")
    benefits: TierBenefits = TierBenefits()


def _default_tiers() -> list[TierSettings]:
    return [
        TierSettings(name="Silver"),
        TierSettings(name="Gold", min_spend=500, min_orders=5, multiplier=1.25, benefits={"free_shipping": True}),
        TierSettings(
            name="Platinum",
            min_spend=1500,
            min_orders=12,
            multiplier=1.5,
            benefits={"free_shipping": True, "birthday_gift": "a gift on your birthday"},
        ),
    ]


class ReferralSettings(BaseModel):
    """Referrals (boomerang.loyalty.referrals): what a referral pays once the friend's first order is delivered, and
    the velocity limits; BOOMERANG_LOYALTY__REFERRALS__... to change."""

    enabled: bool = True
    referrer_points: int = Field(default=100, ge=0, le=1_000_000, description="to the referrer, per friend")
    friend_points: int = Field(default=50, ge=0, le=1_000_000, description="to the friend, on their first order")
    window_days: int = Field(default=7, ge=1, le=365, description="the velocity limits count over this many days")
    max_friends_per_device: int = Field(default=2, ge=1, description="the most friends attributed from one device")
    max_friends_per_network: int = Field(default=10, ge=1, description="the most from one IPv4 /24 or IPv6 /64")
    max_rewards_per_referrer: int = Field(default=10, ge=1, description="the most rewards one referrer gets")


class LoyaltySettings(BaseModel):
    """The points programme (boomerang.loyalty); BOOMERANG_LOYALTY__... to change. Points are whole numbers: the
    programme's smallest unit."""

    unit_name: str = Field(default="points", min_length=1, max_length=32, description="what customers call a point")
    point_value: float = Field(default=1.0, gt=0, description="what one point pays of an order, in its currency")
    cashback_percent: float = Field(default=5.0, ge=0, le=100, description="of an order's paid amount, as points")
    pending_days: float = Field(default=14, ge=0, description="an order's points are spendable this long after it")
    expiry_days: float = Field(default=365, ge=0, description="spendable points expire after this long; 0: never")
    max_redeem_share: float = Field(default=0.3, ge=0, le=1, description="the most of an order that points may pay")
    hold_ttl_minutes: float = Field(default=15, gt=0, le=7 * 24 * 60, description="a checkout hold not confirmed ends")
    tiers: list[TierSettings] = Field(
        default_factory=_default_tiers, min_length=1, description="lowest first; the first is everyone's"
    )
    tier_period_days: int = Field(default=365, ge=1, description="tiers qualify on spend and orders this far back")
    tier_grace_days: int = Field(default=30, ge=0, description="below their tier this long, a customer moves down")
    expiry_notice_days: int = Field(default=14, ge=0, description="points expiring are announced this early; 0: not")
    referrals: ReferralSettings = ReferralSettings()

    @field_validator("tiers")
    @classmethod
    def _tiers_in_order(cls, tiers: list[TierSettings]) -> list[TierSettings]:
        names = [t.name.casefold() for t in tiers]
        if len(set(names)) != len(names):
            raise ValueError("tier names must differ")
        if tiers[0].min_spend or tiers[0].min_orders:
            raise ValueError("the first tier is everyone's: no min_spend, no min_orders")
        if any(not (t.min_spend or t.min_orders) for t in tiers[1:]):
            raise ValueError("every tier but the first needs a min_spend or a min_orders")
        return tiers


class RecommendationSettings(BaseModel):
    """Product recommendations (boomerang.recommendations); BOOMERANG_RECOMMENDATIONS__... to change."""

    train_every_hours: float = Field(default=24, gt=0, description="serve and worker train again this often")
    history_days: int = Field(default=730, ge=7, description="purchases, carts and views this far back are learned")


class ReviewSettings(BaseModel):
    """The monthly review sent to the shop's owners (orchestration.review_send); BOOMERANG_REVIEW__... to change,
    lists as JSON: BOOMERANG_REVIEW__EMAILS='["owner@shop.example"]'. Email goes through the email channel, Telegram
    through the shop's bot (the telegram channel); the owner's chat id is what the bot sees when they write to it."""

    enabled: bool = Field(default=False, description="serve and worker send the review of the month before, once")
    emails: list[str] = Field(default_factory=list, description="the owners' email addresses")
    telegram_chats: list[str] = Field(default_factory=list, description="the owners' Telegram chat ids")
    day: int = Field(default=1, ge=1, le=28, description="the day of the month it goes out on, for the month before")
    hour: int = Field(default=8, ge=0, le=23, description="the hour (UTC) from which it goes out that day")

    @field_validator("emails")
    @classmethod
    def _addresses(cls, emails: list[str]) -> list[str]:
        for address in emails:
            if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", address.strip()):
                raise ValueError(f"{address!r} is not an email address")
        return [a.strip() for a in emails]

    @field_validator("telegram_chats", mode="before")
    @classmethod
    def _chats(cls, chats: list[str | int]) -> list[str]:
        for chat in chats:
            if not re.fullmatch(r"-?\d{1,20}|@[A-Za-z0-9_]{5,32}", str(chat).strip()):
                raise ValueError(f"{chat!r} is not a Telegram chat id (digits, or @channel)")
        return [str(c).strip() for c in chats]


class EventsSettings(BaseModel):
    """Where the event log lives (boomerang.events); BOOMERANG_EVENTS__... to change. The default is a DuckDB file in
    home, for one process; `lake` keeps it as Delta tables (partitioned Parquet) on a shared path or S3-compatible
    storage, written by several pipeline workers and read by DuckDB or a Spark cluster."""

    backend: Literal["duckdb", "lake"] = "duckdb"
    path: str | None = Field(default=None, description="the lake's folder or s3://bucket/prefix; home/lake when unset")
    engine: Literal["duckdb", "spark"] = Field(default="duckdb", description="what reads the lake")
    spark_master: str = Field(default="local[2]", description="spark://host:7077 for a standalone cluster")
    s3_endpoint: str | None = Field(default=None, description="an S3-compatible server's URL; AWS's when unset")
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None


class Settings(BaseSettings):
    """Boomerang's configuration, read from BOOMERANG_* variables (nested with __)."""

    model_config = SettingsConfigDict(env_prefix="BOOMERANG_", env_nested_delimiter="__")

    home: Path = Path("boomerang-data")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the operational store; SQLite in home when unset"
    )
    host: str = "127.0.0.1"
    port: int = 8600
    public_url: str = Field(
        default="http://127.0.0.1:8600",
        description="where customers reach Boomerang: tracking, unsubscribe and preference links",
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="the shop's sites whose pages may call /v1 (tracking, push, inbox)"
    )
    duckdb_lock_timeout_seconds: float = 60.0
    segments_refresh_minutes: float = Field(
        default=5.0, description="how often serve recomputes segments whose membership changes with time alone"
    )
    ingest: IngestSettings = IngestSettings()
    guards: GuardSettings = GuardSettings()
    messaging: MessagingSettings = MessagingSettings()
    catalog: CatalogSettings = CatalogSettings()
    telegram: TelegramSettings = TelegramSettings()
    dashboard: DashboardSettings = DashboardSettings()
    loyalty: LoyaltySettings = LoyaltySettings()
    recommendations: RecommendationSettings = RecommendationSettings()
    review: ReviewSettings = ReviewSettings()
    events: EventsSettings = EventsSettings()

    @cached_property
    def sql_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'boomerang.sqlite').resolve()}"

    @cached_property
    def events_path(self) -> Path:
        return (self.home / "events.duckdb").resolve()

    @cached_property
    def lake_path(self) -> str:
        return self.events.path or str((self.home / "lake").resolve())

    @cached_property
    def reco_model_path(self) -> Path:
        return (self.home / "recommendations" / "model.pkl").resolve()

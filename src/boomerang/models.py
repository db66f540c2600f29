"""Every table of the operational store, imported in one place for Alembic and the metadata."""

from boomerang.auth.models import ApiKey, User
from boomerang.catalog.models import CatalogChange, Product
from boomerang.channels.models import ChannelSetting, FakeChannelLog, InboxItem, PushSubscription
from boomerang.customers.models import AuditEntry, Consent, ConsentChange, Customer, Identity, Merge, SuppressedAddress
from boomerang.db import Base
from boomerang.events.models import InboxEvent, SetAsideMessage
from boomerang.experiments.models import ExperimentUnit, ImportedExperiment
from boomerang.journeys.models import ApprovalRequest, Conversion, Instance, Journey, JourneyVersion
from boomerang.loyalty.models import LoyaltyEntry
from boomerang.messaging.models import Campaign, Message, MessageEvent, Preference, Template
from boomerang.orchestration.models import ReviewSend
from boomerang.orders.models import Cart, Order, OrderLine
from boomerang.recommendations.models import RecoBlock
from boomerang.segments.models import Segment, SegmentMember, SegmentSize, SegmentVersion

__all__ = [
    "ApprovalRequest",
    "Conversion",
    "Instance",
    "Journey",
    "JourneyVersion",
    "LoyaltyEntry",
    "Message",
    "ApiKey",
    "AuditEntry",
    "Base",
    "Consent",
    "ConsentChange",
    "Customer",
    "ExperimentUnit",
    "FakeChannelLog",
    "Identity",
    "ImportedExperiment",
    "InboxEvent",
    "SetAsideMessage",
    "Merge",
    "RecoBlock",
    "Campaign",
    "Cart",
    "CatalogChange",
    "ChannelSetting",
    "InboxItem",
    "MessageEvent",
    "Preference",
    "PushSubscription",
    "Template",
    "Order",
    "OrderLine",
    "Product",
    "Segment",
    "SegmentMember",
    "SegmentSize",
    "SegmentVersion",
    "ReviewSend",
    "SuppressedAddress",
    "User",
]

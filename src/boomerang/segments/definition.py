"""Segment definitions: a rule tree as data (JSON, YAML or Python), validated with errors that name the field.

    {"all": [
        {"event": "Product Viewed", "where": [{"property": "category", "op": "eq", "value": "Coffee"}],
         "within_days": 7, "op": "gte", "value": 3},
        {"not": {"event": "Order Completed", "within_days": 7}}]}

Leaves: `attribute` (the profile), `event` (count, sum/avg/min/max of a property, first or last time),
`anniversary` (birthday, first order), `trait` (RFM, lifecycle, predictions, loyalty), `reachable` (consent and
address on a channel), `segment` (membership of another), `bucket` (a stable random share). Nodes:
`all`, `any`, `not`. Everything is relative to an as-of moment, so a rule can be checked in the past.
"""

from __future__ import annotations

import builtins
import re
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from boomerang.core.errors import ValidationFailed
from boomerang.core.vocab import CHANNELS, PROFILE_FIELDS, SEEN_FIELDS, SEGMENT_CHANGES

ENTERED, EXITED = SEGMENT_CHANGES  # the events membership changes write

# Profile fields a rule can test, by type; `attributes.<key>` reaches the free-form attributes.
RULE_FIELDS: dict[str, str] = {**PROFILE_FIELDS, **SEEN_FIELDS}
# Computed traits: the table they come from and their type.
TRAITS: dict[str, tuple[str, str]] = {
    "rfm_group": ("rfm", "string"),
    "r_score": ("rfm", "number"),
    "f_score": ("rfm", "number"),
    "m_score": ("rfm", "number"),
    "recency_days": ("rfm", "number"),
    "frequency": ("rfm", "number"),
    "monetary": ("rfm", "number"),
    "lifecycle_stage": ("lifecycle", "string"),
    "p_alive": ("predictions", "number"),
    "expected_purchases": ("predictions", "number"),
    "predicted_spend": ("predictions", "number"),
    "predicted_clv": ("predictions", "number"),
    "churn_probability": ("predictions", "number"),  # P(no purchase in the horizon): the one churn score
    "expected_next_purchase": ("predictions", "date"),
    "loyalty_tier": ("loyalty", "string"),
    "loyalty_tier_rank": ("loyalty", "number"),  # 0 the first tier, 1 the next...
    "loyalty_points": ("loyalty", "number"),  # spendable now
    "loyalty_pending": ("loyalty", "number"),
    "loyalty_expiring": ("loyalty", "number"),  # within 30 days
    "loyalty_lifetime_points": ("loyalty", "number"),
    "loyalty_achievements": ("loyalty", "list"),  # keys of those earned
    "uplift_score": ("uplift", "number"),  # predicted effect of the best variant of an imported experiment
    "uplift_variant": ("uplift", "string"),  # that variant
    "uplift_experiment": ("uplift", "string"),
}
RENAMED_TRAITS = {"churn_risk": "churn_probability"}  # old names a stored rule may still use -> today's
TRAIT_KINDS = tuple(dict.fromkeys(kind for kind, _ in TRAITS.values()))
# Operators by the type of what they compare; `value` must fit (a list for in, two items for between...).
OPERATORS: dict[str, set[str]] = {
    "string": {"eq", "ne", "in", "not_in", "contains", "starts_with", "ends_with", "exists", "not_exists"},
    "number": {"eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in", "exists", "not_exists"},
    "date": {
        "before",
        "after",
        "on",
        "between",
        "within_last_days",
        "more_than_days_ago",
        "within_next_days",
        "exists",
        "not_exists",
    },
    "list": {"contains", "not_contains", "is_empty", "exists", "not_exists"},
}
NO_VALUE = {"exists", "not_exists", "is_empty"}
MEASURES = {
    "count": "number",
    "sum": "number",
    "avg": "number",
    "min": "number",
    "max": "number",
    "first": "date",
    "last": "date",
}
NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
RESERVED = {"new", "matrix", "preview", "library"}  # path segments of the API and the dashboard
PROFILE = "profile"  # the trigger of rules on profile fields and consents: identify calls


class FieldError(ValueError):
    """A validator's complaint about one field of the rule (pydantic would only name the rule)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_value(op: str, value: Any, kind: str) -> None:
    """That `value` fits `op` on a `kind`; raises ValueError with the reason."""
    if op not in OPERATORS[kind]:
        raise FieldError(
            "op", f"operator {op!r} does not fit a {kind}; use one of {', '.join(sorted(OPERATORS[kind]))}"
        )
    if op in NO_VALUE:
        if value is not None:
            raise FieldError("value", f"operator {op!r} takes no value")
        return
    if value is None:
        raise FieldError("value", f"operator {op!r} needs a value")
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            raise FieldError("value", f"operator {op!r} needs a non-empty list")
        items = value
    elif op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise FieldError("value", "operator 'between' needs a list of two items, [low, high]")
        items = value
    else:
        items = [value]
    for item in items:
        if op in ("within_last_days", "more_than_days_ago", "within_next_days"):
            if not isinstance(item, int) or isinstance(item, bool) or item < 0:
                raise FieldError("value", f"operator {op!r} needs a whole number of days >= 0, not {item!r}")
        elif kind == "number" and (isinstance(item, bool) or not isinstance(item, (int, float))):
            raise FieldError("value", f"a number is compared with numbers, not {item!r}")
        elif kind == "date":
            try:
                date.fromisoformat(str(item)[:10])
            except ValueError:
                raise FieldError("value", f"{item!r} is not a date (YYYY-MM-DD)") from None
        elif kind in ("string", "list") and not isinstance(item, (str, int, float)):
            raise FieldError("value", f"{item!r} is not a text value")
    if op == "between" and kind in ("number", "date"):
        low, high = (date.fromisoformat(str(i)[:10]) for i in items) if kind == "date" else items
        if low > high:
            raise FieldError("value", f"impossible range: between {items[0]} and {items[1]}")


class Condition(_Rule):
    """property op value, as used in an event's `where`."""

    property: str = Field(min_length=1, max_length=200)
    op: str = "eq"
    value: Any = None
    type: Literal["string", "number"] | None = None  # inferred from the value when not given

    @model_validator(mode="after")
    def _fits(self) -> Condition:
        _check_value(self.op, self.value, self.kind)
        return self

    @builtins.property  # `property` is a field here
    def kind(self) -> str:
        if self.type:
            return self.type
        sample = self.value[0] if isinstance(self.value, list) and self.value else self.value
        return "number" if isinstance(sample, (int, float)) and not isinstance(sample, bool) else "string"


class Attribute(_Rule):
    attribute: str
    op: str
    value: Any = None
    type: Literal["string", "number", "date", "list"] | None = None  # for attributes.<key>; inferred otherwise

    @model_validator(mode="after")
    def _fits(self) -> Attribute:
        if self.attribute not in RULE_FIELDS and not re.fullmatch(r"attributes\.[A-Za-z0-9_\-]{1,100}", self.attribute):
            raise FieldError(
                "attribute",
                f"unknown profile field {self.attribute!r}; use one of "
                f"{', '.join(sorted(RULE_FIELDS))} or attributes.<key>",
            )
        _check_value(self.op, self.value, self.kind)
        return self

    @property
    def kind(self) -> str:
        if self.attribute in RULE_FIELDS:
            return RULE_FIELDS[self.attribute]
        if self.type:
            return self.type
        if self.op in OPERATORS["date"] - OPERATORS["string"]:
            return "date"
        if self.op in ("not_contains", "is_empty"):
            return "list"
        sample = self.value[0] if isinstance(self.value, list) and self.value else self.value
        return "number" if isinstance(sample, (int, float)) and not isinstance(sample, bool) else "string"


class Event(_Rule):
    """Did `event` (matching `where`) within the window; `measure op value` tests what was done."""

    event: str = Field(min_length=1, max_length=200)
    where: list[Condition] = Field(default_factory=list)
    within_days: int | None = Field(default=None, ge=1, le=36500, description="a rolling window ending at as-of")
    between: tuple[date, date] | None = Field(default=None, description="fixed dates [from, to], to included")
    measure: Literal["count", "sum", "avg", "min", "max", "first", "last"] = "count"
    property: str | None = Field(default=None, description="what sum/avg/min/max add up")
    per: str | None = Field(
        default=None,
        description="measure per value of this property (e.g. category) "
        "and keep the customer's highest (earliest for first)",
    )
    op: str = "gte"
    value: Any = 1

    @model_validator(mode="after")
    def _fits(self) -> Event:
        if self.within_days is not None and self.between is not None:
            raise FieldError("between", "give within_days or between, not both")
        if self.between is not None and self.between[0] > self.between[1]:
            raise FieldError(
                "between", f"impossible window: between {self.between[0]} and {self.between[1]} ends before it starts"
            )
        if self.measure in ("sum", "avg", "min", "max") and not self.property:
            raise FieldError("property", f"measure {self.measure!r} needs the property to {self.measure}")
        if self.measure in ("count", "first", "last") and self.property:
            raise FieldError("property", f"measure {self.measure!r} takes no property")
        if self.measure in ("first", "last") and self.op == "gte" and self.value == 1:
            raise FieldError("op", f"measure {self.measure!r} needs a date operator (e.g. more_than_days_ago)")
        _check_value(self.op, self.value, MEASURES[self.measure])
        return self


class Anniversary(_Rule):
    """The yearly return of a date (birthday, first order) falls within the next N days (0: today)."""

    anniversary: Literal["birthday", "first_order"]
    within_next_days: int = Field(ge=0, le=366)


class Trait(_Rule):
    trait: str
    op: str
    value: Any = None

    @field_validator("trait", mode="before")
    @classmethod
    def _renamed(cls, name: Any) -> Any:
        return RENAMED_TRAITS.get(name, name) if isinstance(name, str) else name

    @model_validator(mode="after")
    def _fits(self) -> Trait:
        if self.trait not in TRAITS:
            raise FieldError("trait", f"unknown trait {self.trait!r}; use one of {', '.join(TRAITS)}")
        kind = TRAITS[self.trait][1]
        if self.op == "top_percent":
            if kind != "number" or not isinstance(self.value, (int, float)) or not 0 < self.value <= 100:
                raise FieldError("value", "top_percent needs a numeric trait and a share in (0, 100]")
            return self
        _check_value(self.op, self.value, kind)
        return self


class Reachable(_Rule):
    """Consent granted on the channel, and an address for it (email, phone, Telegram chat)."""

    reachable: str

    @model_validator(mode="after")
    def _fits(self) -> Reachable:
        if self.reachable not in CHANNELS:
            raise FieldError("reachable", f"unknown channel {self.reachable!r}; use one of {', '.join(CHANNELS)}")
        return self


class InSegment(_Rule):
    segment: str


class Bucket(_Rule):
    """A stable random share: customer ids hashed with `salt` into buckets 0..99; [from, to) is kept."""

    bucket: tuple[int, int]
    salt: str = Field(default="bucket", min_length=1, max_length=100)

    @model_validator(mode="after")
    def _fits(self) -> Bucket:
        low, high = self.bucket
        if not 0 <= low < high <= 100:
            raise FieldError("bucket", "bucket needs [from, to) with 0 <= from < to <= 100")
        return self


class All(_Rule):
    all: list[Rule] = Field(min_length=1)


class Any_(_Rule):
    any: list[Rule] = Field(min_length=1)


class Not(_Rule):
    not_: Rule = Field(alias="not")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


Leaf = Attribute | Event | Anniversary | Trait | Reachable | InSegment | Bucket
Rule = All | Any_ | Not | Leaf
KEYS: dict[str, type[_Rule]] = {
    "all": All,
    "any": Any_,
    "not": Not,
    "attribute": Attribute,
    "event": Event,
    "anniversary": Anniversary,
    "trait": Trait,
    "reachable": Reachable,
    "segment": InSegment,
    "bucket": Bucket,
}


MAX_CONDITIONS = 200  # leaves of one rule: what one query can evaluate in seconds, not minutes
MAX_NESTING = 12  # all/any/not inside each other


def parse_rule(raw: Any, path: str = "rule") -> Rule:
    """A rule from plain data; errors name the path to the bad part (rule.all[1].op) and the reason. A rule of
    more than MAX_CONDITIONS conditions or nested deeper than MAX_NESTING is refused before it is read."""
    if isinstance(raw, _Rule):
        return raw
    _check_size(raw, path)
    return _parse(raw, path)


def _check_size(raw: Any, path: str) -> None:
    """Count conditions and nesting level by level (no recursion, so no depth can overflow the stack)."""
    level, conditions = [raw], 0
    for depth in range(MAX_NESTING + 2):
        inner = []
        for node in level:
            groups = [node.get(k) for k in ("all", "any", "not")] if isinstance(node, dict) else []
            groups = [g for g in groups if g is not None]
            if not groups:
                conditions += 1
            for group in groups:
                inner.extend(group if isinstance(group, list) else [group])
        if conditions > MAX_CONDITIONS:
            raise ValidationFailed([{"field": path, "reason": f"more than {MAX_CONDITIONS} conditions"}])
        if not inner:
            return
        if depth >= MAX_NESTING:
            raise ValidationFailed([{"field": path, "reason": f"all/any/not nested deeper than {MAX_NESTING}"}])
        level = inner


def _parse(raw: Any, path: str) -> Rule:
    if isinstance(raw, _Rule):
        return raw
    if not isinstance(raw, dict):
        raise ValidationFailed(
            [{"field": path, "reason": 'a rule is an object such as {"event": ...} or {"all": [...]}'}]
        )
    kinds = [k for k in KEYS if k in raw]
    if len(kinds) != 1:
        found = f"it has {', '.join(kinds)}" if kinds else f"it has {', '.join(map(str, raw)) or 'nothing'}"
        raise ValidationFailed([{"field": path, "reason": f"a rule needs exactly one of {', '.join(KEYS)}; {found}"}])
    kind = kinds[0]
    if kind in ("all", "any"):
        items = raw[kind]
        if not isinstance(items, list) or not items:
            raise ValidationFailed([{"field": f"{path}.{kind}", "reason": "needs a non-empty list of rules"}])
        extra = set(raw) - {kind}
        if extra:
            raise ValidationFailed([{"field": f"{path}.{sorted(extra)[0]}", "reason": "unknown field"}])
        children = [_parse(item, f"{path}.{kind}[{i}]") for i, item in enumerate(items)]
        return All(all=children) if kind == "all" else Any_(any=children)
    if kind == "not":
        extra = set(raw) - {"not"}
        if extra:
            raise ValidationFailed([{"field": f"{path}.{sorted(extra)[0]}", "reason": "unknown field"}])
        return Not(not_=_parse(raw["not"], f"{path}.not"))
    try:
        return KEYS[kind].model_validate(raw)
    except ValidationError as exc:
        raise ValidationFailed([_error(e, path) for e in exc.errors(include_url=False)]) from None


def _error(e: dict, path: str) -> dict[str, str]:
    """A pydantic error as {field, reason}, with the field a validator named when it named one."""
    cause = e.get("ctx", {}).get("error")
    loc = [str(p) for p in e["loc"]] + ([cause.field] if isinstance(cause, FieldError) else [])
    return {
        "field": ".".join([p for p in (path, *loc) if p]) or "definition",
        "reason": e["msg"].removeprefix("Value error, "),
    }


def to_data(rule: Rule) -> dict[str, Any]:
    """The rule as plain JSON-able data (what parse_rule reads back)."""
    if isinstance(rule, All):
        return {"all": [to_data(r) for r in rule.all]}
    if isinstance(rule, Any_):
        return {"any": [to_data(r) for r in rule.any]}
    if isinstance(rule, Not):
        return {"not": to_data(rule.not_)}
    return rule.model_dump(mode="json", exclude_none=True)


def leaves(rule: Rule):
    """Every leaf of the tree, depth first."""
    if isinstance(rule, (All, Any_)):
        for child in rule.all if isinstance(rule, All) else rule.any:
            yield from leaves(child)
    elif isinstance(rule, Not):
        yield from leaves(rule.not_)
    else:
        yield rule


class Definition(BaseModel):
    """A named segment: what it is for, and its rule."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="lower-case letters, digits and _, unique")
    title: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=2000)
    rule: Any

    @model_validator(mode="after")
    def _valid(self) -> Definition:
        if self.name in RESERVED:
            raise FieldError("name", f"{self.name!r} is reserved; choose another name")
        if not NAME.fullmatch(self.name):
            raise FieldError(
                "name", "name must be lower-case letters, digits and _ (starting with a letter), at most 63"
            )
        return self

    @property
    def tree(self) -> Rule:
        return parse_rule(self.rule)

    def triggers(self) -> set[str]:
        """What makes a customer's membership change when it happens: event names, and "profile" for
        attribute, reachability and anniversary rules (traits and other segments change on recompute)."""
        out: set[str] = set()
        for leaf in leaves(self.tree):
            if isinstance(leaf, Event):
                out.add(leaf.event)
            elif isinstance(leaf, Anniversary) and leaf.anniversary == "first_order":
                out.add("Order Completed")
            elif isinstance(leaf, (Attribute, Reachable, Anniversary)):
                out.add(PROFILE)
        return out

    def expires(self) -> bool:
        """Whether membership can change without an event of its triggers passing the pipeline: with time
        alone (rolling windows, relative dates), with traits and other segments recomputed, or with
        profiles and consents changed through the REST API. These are recomputed on a schedule."""
        return any(
            isinstance(leaf, (Anniversary, Trait, InSegment, Attribute, Reachable))
            or (isinstance(leaf, Event) and (leaf.within_days is not None or leaf.measure in ("first", "last")))
            for leaf in leaves(self.tree)
        )


def parse_definition(raw: Any) -> Definition:
    """A definition from plain data (a parsed JSON or YAML document); errors name the field."""
    if not isinstance(raw, dict):
        raise ValidationFailed(
            [{"field": "definition", "reason": "a segment definition is an object with name and rule"}]
        )
    try:
        definition = Definition.model_validate(raw)
    except ValidationError as exc:
        raise ValidationFailed([_error(e, "") for e in exc.errors(include_url=False)]) from None
    parse_rule(definition.rule)  # validates the tree, naming the path of the first problem
    return definition

"""Typed inputs of imported experiments: how to read a file of a finished test."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class ImportSpec(BaseModel):
    """Which columns hold the group, the outcomes, the pre-period covariate, the unit's id and its features."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,59}$", description="the experiment's name")
    group: str = Field(min_length=1, description="the column naming each unit's group")
    control: str = Field(min_length=1, description="the group value of the control (no treatment)")
    binary: list[str] = Field(default_factory=list, description="0/1 outcome columns (visit, conversion)")
    money: list[str] = Field(default_factory=list, description="money outcome columns (spend)")
    covariate: str | None = Field(None, description="a pre-period column for CUPED (past spend)")
    id_column: str | None = Field(None, description="the column of the customer's external id")
    features: list[str] = Field(default_factory=list, description="columns the uplift model learns from")
    create_customers: bool = Field(False, description="create the shop customers the units name (or row keys)")
    equal_split: bool = Field(False, description="the groups were meant to be equal: check the sample ratio")

    @field_validator("binary", "money", "features", mode="before")
    @classmethod
    def _listed(cls, value: object) -> object:
        """A command line's or a query's "a,b,c" is the list [a, b, c]."""
        if value is None:
            return []
        return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _columns(self) -> ImportSpec:
        outcomes = [*self.binary, *self.money]
        if not outcomes:
            raise ValueError("name at least one outcome column (binary or money)")
        named = [self.group, *outcomes, *([self.covariate] if self.covariate else [])]
        if self.id_column:
            named.append(self.id_column)
        repeated = sorted({c for c in named if named.count(c) > 1})
        if repeated:
            raise ValueError(f"a column may play one part only: {', '.join(repeated)}")
        if self.group in self.features or any(o in self.features for o in outcomes):
            raise ValueError("the features may not include the group or an outcome (the model would see the answer)")
        return self

    @property
    def outcomes(self) -> dict[str, str]:
        """outcome column -> 'binary' or 'money', in the order named."""
        return {**dict.fromkeys(self.binary, "binary"), **dict.fromkeys(self.money, "money")}

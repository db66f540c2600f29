"""The folded copies of a customer's name and phone that search matches against, kept on every write.

SQLite's lower() and LIKE fold ASCII only, and PostgreSQL's depend on the database's locale, so a name is folded
here, in Python (casefold, ё as е, one space between words), into `first_name_key` / `last_name_key`, and a
phone kept as its digits in `phone_key`; search compares folded text with folded text on both stores.

Every statement that writes a name or a phone to the customers table gets its keys added as it is executed (a
`before_execute` hook on every engine): ORM flushes (profiles, identify, merges) and Core bulk updates (imports)
alike, so no write path can forget them. An erasure deletes the row, and its keys with it.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import sqlalchemy as sa

TABLE = "customers"
KEYS = {"first_name": "first_name_key", "last_name": "last_name_key", "phone": "phone_key"}
KEY_COLUMNS = tuple(KEYS.values())
_SPACES = re.compile(r"\s+")
_NOT_DIGITS = re.compile(r"\D+")


def fold(text: Any) -> str | None:
    """Text as search compares it: Unicode-normalised, case-folded, ё as е, single spaces; None for nothing."""
    if not isinstance(text, str):
        return None
    folded = _SPACES.sub(" ", unicodedata.normalize("NFKC", text).casefold().replace("ё", "е")).strip()
    return folded or None


def digits(text: Any) -> str | None:
    """The digits of a phone number as typed in any format ("+380 67 123-45-67" -> "380671234567")."""
    if not isinstance(text, str):
        return None
    return _NOT_DIGITS.sub("", unicodedata.normalize("NFKC", text)) or None


def key_of(column: str, value: Any) -> str | None:
    return digits(value) if column == "phone" else fold(value)


def _with_keys(params: dict[str, Any], skip: set[str]) -> dict[str, Any]:
    found = {KEYS[c]: key_of(c, params[c]) for c in KEYS if c in params and c not in skip}
    return {**params, **found} if found else params


def _explicit(statement: sa.Insert | sa.Update) -> dict[str, Any]:
    """The statement's own .values(): column name -> value or bound parameter."""
    return {getattr(column, "key", column): value for column, value in (statement._values or {}).items()}


def _add_keys(conn, statement, multiparams, params, execution_options):
    """Engine hook: add the search keys to any INSERT or UPDATE of customers that sets a name or a phone."""
    if not isinstance(statement, (sa.Insert, sa.Update)) or getattr(statement.table, "name", None) != TABLE:
        return statement, multiparams, params
    if statement._multi_values:  # insert().values([...]): not a form this project writes customers in
        return statement, multiparams, params
    explicit = {c: v for c, v in _explicit(statement).items() if c in KEYS}
    for column, value in explicit.items():
        if isinstance(value, sa.BindParameter) and value.callable is None and value.value is None:
            name = f"{KEYS[column]}__folded"  # per row, from the parameter the row binds
            statement = statement.values({KEYS[column]: sa.bindparam(name)})
            multiparams = [{**p, name: key_of(column, p.get(value.key))} for p in multiparams]
            if params:
                params = {**params, name: key_of(column, params.get(value.key))}
        elif isinstance(value, sa.BindParameter):
            statement = statement.values({KEYS[column]: key_of(column, value.effective_value)})
        elif not isinstance(value, sa.ClauseElement):
            statement = statement.values({KEYS[column]: key_of(column, value)})
    multiparams = [_with_keys(p, set(explicit)) for p in multiparams]
    params = _with_keys(params, set(explicit)) if params else params
    return statement, multiparams, params


def install() -> None:
    """Register the hook on every engine (once)."""
    if not sa.event.contains(sa.Engine, "before_execute", _add_keys):
        sa.event.listen(sa.Engine, "before_execute", _add_keys, retval=True)

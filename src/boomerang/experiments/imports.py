"""Reading a finished experiment's file (CSV, gzipped or not): every named column found, every value checked."""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from boomerang.core.errors import ValidationFailed
from boomerang.experiments.schemas import ImportSpec

MAX_ERRORS = 10  # per column: enough to see the pattern


@dataclass
class Parsed:
    """The file's units: group, outcomes, covariate, key and features, one entry per data row."""

    arm: np.ndarray  # object: the group of each row
    outcomes: dict[str, np.ndarray]  # float
    covariate: np.ndarray | None
    unit: np.ndarray  # object: the id column's value, or the row number
    features: pd.DataFrame
    variants: list[str]  # the treated groups, in the order the file first shows them

    def __len__(self) -> int:
        return len(self.arm)


def read(data: bytes | Path, spec: ImportSpec) -> Parsed:
    """The file's rows as the spec reads them; ValidationFailed naming the column (and line) otherwise."""
    frame = _frame(data.read_bytes() if isinstance(data, Path) else data)
    needed = {"group": [spec.group], "binary": spec.binary, "money": spec.money, "features": spec.features}
    if spec.covariate:
        needed["covariate"] = [spec.covariate]
    if spec.id_column:
        needed["id_column"] = [spec.id_column]
    missing = [
        {"field": option, "reason": f"no column {c!r} in the file (its columns: {', '.join(frame.columns)})"}
        for option, columns in needed.items()
        for c in columns
        if c not in frame.columns
    ]
    if missing:
        raise ValidationFailed(missing)
    arm = frame[spec.group].str.strip()
    errors = _blank(frame, arm, spec.group)
    groups = list(dict.fromkeys(arm[arm != ""]))
    if spec.control not in groups:
        shown = ", ".join(repr(g) for g in groups[:20])
        errors.append({"field": "control", "reason": f"{spec.control!r} is not a value of {spec.group!r} ({shown})"})
    elif len(groups) < 2:
        errors.append({"field": "group", "reason": f"{spec.group!r} has only the control group: nothing to compare"})
    outcomes = {}
    for column, kind in spec.outcomes.items():
        values, wrong = _numbers(frame, column, binary=kind == "binary")
        outcomes[column] = values
        errors += wrong
    covariate = None
    if spec.covariate:
        covariate, wrong = _numbers(frame, spec.covariate)
        errors += wrong
    unit = np.asarray([str(i + 1) for i in range(len(frame))], dtype=object)
    if spec.id_column:
        ids = frame[spec.id_column].str.strip()
        errors += _blank(frame, ids, spec.id_column)
        twice = ids[ids.duplicated(keep=False) & (ids != "")]
        errors += [
            {"field": spec.id_column, "reason": f"line {int(i) + 2}: {ids[i]!r} is in the file more than once"}
            for i in twice.index[:MAX_ERRORS]
        ]
        unit = ids.to_numpy(dtype=object)
    if errors:
        raise ValidationFailed(errors)
    return Parsed(
        arm=arm.to_numpy(dtype=object),
        outcomes=outcomes,
        covariate=covariate,
        unit=unit,
        features=_features(frame, spec.features),
        variants=[g for g in groups if g != spec.control],
    )


def _frame(raw: bytes) -> pd.DataFrame:
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValidationFailed([{"field": "file", "reason": f"not a readable gzip file: {exc}"}]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationFailed([{"field": "file", "reason": f"not UTF-8 text: {exc}"}]) from None
    if not text.strip():
        raise ValidationFailed([{"field": "file", "reason": "the file is empty"}])
    try:
        dialect = csv.Sniffer().sniff(text[:10_000], delimiters=",;\t")
        sep = dialect.delimiter
    except csv.Error:
        sep = ","
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ValidationFailed([{"field": "file", "reason": f"not a CSV file: {exc}"}]) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise ValidationFailed([{"field": "file", "reason": "the file has a header but no rows"}])
    return frame


def _blank(frame: pd.DataFrame, values: pd.Series, column: str) -> list[dict]:
    return [
        {"field": column, "reason": f"line {int(i) + 2}: the value is empty"}
        for i in frame.index[(values == "").to_numpy()][:MAX_ERRORS]
    ]


def _numbers(frame: pd.DataFrame, column: str, *, binary: bool = False) -> tuple[np.ndarray, list[dict]]:
    """The column as floats, and an error per bad line (not a number; not 0 or 1 for a binary outcome)."""
    text = frame[column].str.strip()
    values = pd.to_numeric(text.str.lower().replace({"true": "1", "false": "0"}) if binary else text, errors="coerce")
    bad = values.isna() | ~np.isfinite(values.fillna(0))
    what = "a number"
    if binary:
        bad |= ~values.isin([0, 1])
        what = "0 or 1"
    errors = [
        {"field": column, "reason": f"line {int(i) + 2}: {text[i]!r} is not {what}"}
        for i in frame.index[bad.to_numpy()][:MAX_ERRORS]
    ]
    return values.to_numpy(dtype=float, na_value=np.nan), errors


def _features(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Numbers where the whole column is numeric (blanks allowed), text otherwise."""
    out = {}
    for column in columns:
        text = frame[column].str.strip()
        numbers = pd.to_numeric(text.where(text != ""), errors="coerce")
        numeric = numbers.notna().sum() == (text != "").sum()
        out[column] = numbers.astype(float) if numeric else text.astype(object)
    return pd.DataFrame(out, index=frame.index)

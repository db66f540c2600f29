"""Imported experiments on the real Hillstrom e-mail test: the report's intervals cover the published effects, bad
files store nothing, the uplift model beats random targeting out of sample, and its scores reach segments."""

from __future__ import annotations

import gzip
import shutil
from datetime import datetime
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.test_dashboard import _login, _user
from typer.testing import CliRunner

from boomerang.api.app import create_app
from boomerang.bootstrap import open_workspace
from boomerang.cli.app import app as cli
from boomerang.config import Settings
from boomerang.core.errors import Conflict, ValidationFailed
from boomerang.experiments import imported
from boomerang.experiments.models import ExperimentUnit, ImportedExperiment
from boomerang.experiments.schemas import ImportSpec
from conftest import DATA

pytestmark = pytest.mark.shared_data

FILE = DATA / "hillstrom-email-campaign" / "hillstrom_email_2008.csv.gz"
CONTROL = "No E-Mail"
FEATURES = ["recency", "history", "mens", "womens", "zip_code", "newbie", "channel"]
# The dataset README's means (visit, conversion, spend) per group
PUBLISHED = {
    "Mens E-Mail": (0.1828, 0.0125, 1.4226),
    "Womens E-Mail": (0.1514, 0.0088, 1.0772),
    "No E-Mail": (0.1062, 0.0057, 0.6528),
}
NOW = datetime(2026, 12, 8, 12, 0)


def _spec(**changes) -> ImportSpec:
    base = dict(
        name="hillstrom",
        group="segment",
        control=CONTROL,
        binary=["visit", "conversion"],
        money=["spend"],
        covariate="history",
        features=FEATURES,
        equal_split=True,
    )
    return ImportSpec(**{**base, **changes})


@pytest.fixture(scope="module")
def hillstrom(tmp_path_factory, migrated_home):
    """One workspace with the whole file imported and the uplift fitted on visits (shared: ~15 s)."""
    home = tmp_path_factory.mktemp("hillstrom") / "ws"
    shutil.copytree(migrated_home, home)
    ws = open_workspace(Settings(home=home))
    with ws.uow.session() as session:
        report = imported.import_file(session, FILE.read_bytes(), _spec(), source=FILE.name, now=NOW)
    with ws.uow.session() as session:
        model = imported.fit_uplift(session, ws.log, "hillstrom", now=NOW)
    yield ws, report, model
    ws.engine.dispose()


def test_each_variant_interval_covers_the_published_effect(hillstrom):
    _ws, result, _model = hillstrom
    report = result["report"]
    assert result["units"] == 64_000 and set(result["variants"]) == {"Mens E-Mail", "Womens E-Mail"}
    for group, means in PUBLISHED.items():
        got = report["groups"][group]["means"]
        assert (got["visit"], got["conversion"], got["spend"]) == pytest.approx(means, abs=6e-5)
    for i, outcome in enumerate(("visit", "conversion", "spend")):
        for c in report["comparisons"][outcome]:
            published = PUBLISHED[c["treated"]][i] - PUBLISHED[CONTROL][i]
            assert c["low"] <= published <= c["high"], (outcome, c)
            assert c["verdict"] == "better" and not c["sequential"]
            assert c["method"] == ("bootstrap, CUPED" if outcome == "spend" else "normal")
    assert report["sample_ratio"]["alarm"] is False
    assert "Mens E-Mail converts better than No E-Mail" in report["says"]["Mens E-Mail"]
    narrowing = report["covariate"]["spend"]
    assert all(0 <= r["narrowed_by"] < 0.05 and r["width_with"] <= r["width_without"] for r in narrowing)


def test_the_uplift_model_beats_random_targeting_out_of_sample(hillstrom):
    _ws, _report, model = hillstrom
    womens, mens = model["variants"]["Womens E-Mail"], model["variants"]["Mens E-Mail"]
    assert model["outcome"] == "visit" and "cross-fitted" in model["model"]
    assert womens["qini_interval"][0] > 0  # the Women's e-mail: the ranking finds who it moves, beyond noise
    assert mens["qini_coefficient"] > 0 and womens["auuc"] > womens["auuc_random"]
    assert womens["top"][0]["uplift"] > womens["average_uplift"]
    curve = womens["curve"]
    assert curve[0] == {"share": 0.0, "model": 0.0, "random": 0.0} and curve[-1]["share"] == 1.0
    assert curve[-1]["model"] == pytest.approx(womens["average_uplift"], abs=1e-3)


def test_the_dashboard_figures(hillstrom):
    ws, _report, _model = hillstrom
    with ws.uow.session() as session:
        data = imported.dashboard(session, "hillstrom")
        listed = imported.list_experiments(session)
    assert len(data["rows"]) == 6 and data["uplift"]["variants"]["Mens E-Mail"]["curve"]
    assert listed[0]["name"] == "hillstrom" and listed[0]["uplift"] is True
    _user(ws, "vera", "viewer")
    client = TestClient(create_app(ws, background=False))
    assert _login(client, "vera").status_code == 303
    tests = client.get("/experiments").text
    assert 'data-test="imported:hillstrom"' in tests and 'href="/experiments/imported/hillstrom"' in tests
    page = client.get("/experiments/imported/hillstrom")
    assert page.status_code == 200 and "Mens E-Mail converts better than No E-Mail" in page.text and "<svg" in page.text
    assert client.get("/experiments/imported/nope").status_code == 404


def _stored(ws) -> tuple[int, int]:
    with ws.uow.session() as session:
        return (
            session.scalar(sa.select(sa.func.count()).select_from(ImportedExperiment)),
            session.scalar(sa.select(sa.func.count()).select_from(ExperimentUnit)),
        )


CSV = "id,arm,bought,spent,past\nc1,control,0,0,10\nc2,test,1,12.5,20\nc3,test,0,0,5\nc4,control,1,3,1\n"


@pytest.mark.parametrize(
    ("data", "spec", "field", "words"),
    [
        (b"", {}, "file", "empty"),
        (b"id,arm,bought\n", {}, "file", "no rows"),
        (CSV.encode(), {"group": "variant"}, "group", "no column 'variant'"),
        (CSV.encode(), {"control": "holdout"}, "control", "'holdout' is not a value of 'arm'"),
        (CSV.replace("c3,test,0,0,5", "c3,test,0,lots,5").encode(), {}, "spent", "line 4: 'lots' is not a number"),
        (CSV.replace("c2,test,1", "c2,test,2").encode(), {}, "bought", "line 3: '2' is not 0 or 1"),
        (CSV.replace("c4,", "c1,").encode(), {}, "id", "more than once"),
        (
            gzip.compress(CSV.replace("\nc1,control", "\nc1,").encode(), mtime=0),
            {},
            "arm",
            "line 2: the value is empty",
        ),
    ],
)
def test_bad_files_are_refused_naming_the_column_and_store_nothing(ws, data, spec, field, words):
    full = dict(name="small", group="arm", control="control", binary=["bought"], money=["spent"], id_column="id")
    with pytest.raises(ValidationFailed) as caught, ws.uow.session() as session:
        imported.import_file(session, data, ImportSpec(**{**full, **spec}), source="x.csv", now=NOW)
    assert any(e["field"] == field and words in e["reason"] for e in caught.value.errors), caught.value.errors
    assert _stored(ws) == (0, 0)


def test_a_small_file_links_creates_customers_and_a_name_taken_is_a_conflict(ws):
    spec = ImportSpec(
        name="small",
        group="arm",
        control="control",
        binary=["bought"],
        money=["spent"],
        covariate="past",
        id_column="id",
        create_customers=True,
    )
    with ws.uow.session() as session:
        result = imported.import_file(session, gzip.compress(CSV.encode()), spec, source="x.csv.gz", now=NOW)
    assert result["linked"] == 4 and result["report"]["comparisons"]["bought"][0]["verdict"] == "not enough data"
    with pytest.raises(Conflict), ws.uow.session() as session:
        imported.import_file(session, CSV.encode(), spec, source="x.csv", now=NOW)
    assert _stored(ws) == (1, 4)


def _cli(home: Path, *args: str):
    return CliRunner().invoke(cli, ["--home", str(home), "experiments", *args])


def test_the_cli_imports_scores_customers_and_persuadables_are_a_segment(ws, tmp_path):
    rows = gzip.decompress(FILE.read_bytes()).decode().splitlines()[:4001]  # the first 4,000 customers
    part = tmp_path / "hillstrom-4000.csv"
    part.write_text("\n".join(rows) + "\n")
    home = ws.settings.home
    done = _cli(
        home,
        "import",
        str(part),
        "--group",
        "segment",
        "--control",
        CONTROL,
        "--binary",
        "visit,conversion",
        "--money",
        "spend",
        "--covariate",
        "history",
        "--features",
        ",".join(FEATURES),
        "--name",
        "hill",
        "--create-customers",
        "--json",
    )
    assert done.exit_code == 0, done.output
    assert orjson.loads(done.stdout)["linked"] == 4000
    fitted = _cli(home, "uplift", "hill", "--segment", "persuadables", "--json")
    assert fitted.exit_code == 0, fitted.output
    assert orjson.loads(fitted.stdout)["customers_scored"] == 4000
    members = ws.segments.members("persuadables")
    assert 1150 <= len(members) <= 1250  # the top 30 % by uplift_score
    traits = ws.log.traits("uplift")
    top = traits[traits.customer_id.isin(members.customer_id)]
    assert top.uplift_score.min() >= traits.uplift_score.quantile(0.69)
    bad = _cli(
        home, "import", str(part), "--group", "segment", "--control", "Nobody", "--binary", "visit", "--name", "other"
    )
    assert bad.exit_code == 2 and "'Nobody' is not a value of 'segment'" in bad.output
    shown = _cli(home, "imported", "hill")
    assert shown.exit_code == 0 and "Mens E-Mail" in shown.stdout


def test_the_api_imports_a_file_and_answers_400_on_a_bad_one(ws):
    from fastapi.testclient import TestClient

    from boomerang.api.app import create_app
    from boomerang.auth.service import create_key

    with ws.uow.session() as session:
        _, key = create_key(session, kind="secret", name="t", now=NOW)
    client = TestClient(create_app(ws, background=False))
    auth = {"Authorization": f"Bearer {key}"}
    query = "name=small&group=arm&control=control&binary=bought&money=spent&id_column=id"
    made = client.post(f"/api/experiments/imported?{query}", content=CSV.encode(), headers=auth)
    assert made.status_code == 201 and made.json()["units"] == 4
    bad = client.post(
        f"/api/experiments/imported?{query.replace('small', 'other')}&covariate=nothing", content=CSV, headers=auth
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "covariate"
    assert client.get("/api/experiments/imported/other", headers=auth).status_code == 404
    assert client.get("/api/experiments/imported", headers=auth).json()[0]["name"] == "small"

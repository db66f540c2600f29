"""Templates: locales with their plural forms, a form per channel, the sandbox, escaping, field errors."""

from __future__ import annotations

import pytest

from boomerang.core.errors import ValidationFailed
from boomerang.messaging import service
from boomerang.messaging.templates import check, choose_locale, render
from messaging_data import GREETING, NOW

UK = {
    "uk": {"text": "{{ n }} {{ n|plural(one='бал', few='бали', many='балів') }}"},
    "ru": {"text": "{{ n }} {{ n|plural(one='балл', few='балла', many='баллов') }}"},
    "en": {"text": "{{ n }} {{ n|plural(one='point', other='points') }}"},
}


@pytest.mark.parametrize(
    "n, uk, ru, en",
    [
        (1, "1 бал", "1 балл", "1 point"),
        (3, "3 бали", "3 балла", "3 points"),
        (5, "5 балів", "5 баллов", "5 points"),
        (11, "11 балів", "11 баллов", "11 points"),
        (21, "21 бал", "21 балл", "21 points"),
        (22, "22 бали", "22 балла", "22 points"),
        (0, "0 балів", "0 баллов", "0 points"),
    ],
)
def test_plural_forms_per_locale(n, uk, ru, en):
    assert [render(UK, "sms", loc, {"n": n}).text for loc in ("uk", "ru", "en")] == [uk, ru, en]


def test_money_and_dates_follow_the_locale():
    locales = {"uk": {"text": "{{ total|money('UAH') }}"}, "en": {"text": "{{ total|money('USD') }} {{ day|date }}"}}
    assert render(locales, "sms", "uk", {"total": 1234.5}).text == "1\xa0234,50\xa0₴"
    assert render(locales, "sms", "en", {"total": 1234.5, "day": "2026-03-01"}).text == "$1,234.50 Mar 1, 2026"


def test_each_channel_takes_its_own_form_and_falls_back_to_the_common_fields():
    data = {"first_name": "<Ann>", "loyalty": {"points": 2}, "shop": {"url": "https://shop.test"}}
    email = render(GREETING["locales"], "email", "en", data)
    assert email.subject == "Hello <Ann>"  # a header, not HTML: the channel encodes it
    assert email.html.startswith("<p>Hi &lt;Ann&gt;</p>")  # autoescaped
    assert email.text == "You have 2 points."
    telegram = render(GREETING["locales"], "telegram", "en", data)
    assert telegram.text == "<b>Hi &lt;Ann&gt;</b>" and telegram.buttons == (("Open", "https://shop.test/sale"),)
    push = render(GREETING["locales"], "webpush", "en", data)
    assert (push.subject, push.text, push.url) == ("Hello <Ann>", "You have 2 points.", "https://shop.test/sale")


def test_the_locale_is_chosen_by_tag_then_language_then_default():
    locales = {"en": {}, "uk": {}, "pt-BR": {}}
    assert choose_locale(locales, "uk-UA", "en") == "uk"
    assert choose_locale(locales, "pt_br", "en") == "pt-BR"
    assert choose_locale(locales, "de", "en") == "en"
    assert choose_locale(locales, None, "en") == "en"


def test_the_sandbox_gives_no_way_into_python():
    for source in (
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ first_name.__class__ }}",
    ):
        try:
            assert render({"en": {"text": source}}, "sms", "en", {"first_name": "x"}).text == ""
        except ValidationFailed as refused:
            assert "unsafe" in refused.errors[0]["reason"]
    with pytest.raises(ValidationFailed) as err:  # the immutable sandbox refuses to change the data
        render({"en": {"text": "{{ items.append(1) }}"}}, "sms", "en", {"items": []})
    assert err.value.errors[0]["field"] == "template"


def test_telegram_text_keeps_only_the_tags_telegram_knows():
    out = render(
        {"en": {"text": '<b>{{ x }}</b><div>y</div><a href="https://a.test">l</a>'}}, "telegram", "en", {"x": "<i>"}
    )
    assert out.text == '<b>&lt;i&gt;</b>y<a href="https://a.test">l</a>'


def test_errors_name_the_field():
    cases = [
        ({"en": {"text": "{{ x"}}, "locales.en.text"),
        ({"en": {"text": "ok", "email": {"html": "{% if %}"}}}, "locales.en.email.html"),
        ({"en": {"text": "ok", "sms": {"html": "x"}}}, "locales.en.sms.html"),
        ({"en": {"text": "ok", "fax": {}}}, "locales.en.fax"),
        ({"en": {"text": "ok", "buttons": [{"label": "x"}]}}, "locales.en.buttons"),
        ({"en": {"url": "x"}}, "locales.en.text"),
        ({}, "locales"),
    ]
    for locales, field in cases:
        with pytest.raises(ValidationFailed) as err:
            check(locales, "en")
        assert field in [e["field"] for e in err.value.errors], (locales, err.value.errors)
    with pytest.raises(ValidationFailed) as err:
        check({"uk": {"text": "x"}}, "en")
    assert err.value.errors[0]["field"] == "default_locale"


def test_saving_versions_a_template_and_refuses_bad_names_and_topics(ws):
    with ws.uow.session() as session:
        assert service.save(session, GREETING, now=NOW).version == 1
        assert service.save(session, GREETING, now=NOW).version == 1  # unchanged
        changed = {**GREETING, "title": "Another"}
        assert service.save(session, changed, now=NOW).version == 2
        for bad, field in (
            ({**GREETING, "name": "Bad Name"}, "name"),
            ({**GREETING, "topic": "spam"}, "topic"),
            ({**GREETING, "colour": "red"}, "colour"),
        ):
            with pytest.raises(ValidationFailed) as err:
                service.save(session, bad, now=NOW)
            assert err.value.errors[0]["field"] == field
    with ws.uow.session() as session:
        assert [t["name"] for t in service.listing(session)] == ["greeting"]


@pytest.mark.parametrize(
    "source, reason",
    [
        ("{% include 'x' %}", "include, import and extends"),
        ("{% import 'x' as y %}", "include, import and extends"),
        ("{% extends 'x' %}", "include, import and extends"),
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "calls itself"),
        ("{{ 'A' * 100000000 }}", "more than 100,000 items"),
        ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "more than 100,000"),
        ("{% for i in range(20000) %}{{ 'x' * 99 }}{% endfor %}", "more than"),
        ("{{ 10 ** 10000000 }}", "exponents above 100"),
    ],
)
def test_a_template_costs_little_or_fails_with_a_reason(source, reason):
    """Bounded costs for whoever writes templates (issue 14): no include, no runaway loop, output or recursion."""
    from boomerang.core.errors import ValidationFailed
    from boomerang.messaging import templates

    locales = {"en": {"subject": "Hi", "text": source}}
    try:
        templates.check(locales, "en")
        templates.render(locales, "sms", "en", {})
    except ValidationFailed as exc:
        assert reason in exc.errors[0]["reason"], exc.errors
    else:
        raise AssertionError("rendered")

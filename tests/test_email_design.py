"""The email designer's blocks: checked, made into responsive HTML through MJML (mrml) with the Jinja in place,
and rendered as any template is: escaped, with products, lines, loyalty and the footer's links."""

from __future__ import annotations

import pytest

from boomerang.core.errors import ValidationFailed
from boomerang.messaging import delivery, email_design, service, templates

XSS = "<script>alert(1)</script>"
DESIGN = [
    {"type": "heading", "text": "Hi {{ first_name }}!"},
    {"type": "text", "text": "Spring is here.\nTake {{ loyalty.discount_percent }}% off. <b>not bold</b>"},
    {"type": "image", "src": "https://shop.example.com/hero.png", "alt": "Spring & sun", "href": "{{ shop.url }}"},
    {"type": "button", "label": "Shop now", "url": "{{ shop.url }}/sale?x=1&y=2"},
    {"type": "divider"},
    {"type": "spacer", "height": 12},
    {"type": "products", "title": "Picked for you", "block": "", "size": 2},
    {"type": "products", "title": "Goes with your cart", "block": "cart-cross-sell", "size": 3},
    {"type": "cart"},
    {"type": "order"},
    {"type": "loyalty"},
    {"type": "social", "links": [{"network": "instagram", "url": "https://instagram.com/shop"}]},
    {"type": "footer", "text": "{{ shop.name }}, 1 Main St"},
]


def _render(design, data=None, subject="Hi {{ first_name }}"):
    locales = email_design.compile_locales({"en": {"subject": subject, "email": {"design": design}}})
    templates.check(email_design.without_design(locales), "en")
    products = [
        {"name": "Tea set", "price": 34.0, "currency": "EUR", "url": "https://shop.example.com/p/1"},
        {"name": "Kettle", "price": 20.0, "currency": "EUR", "url": "https://shop.example.com/p/2", "image_url": ""},
    ]
    asked = []

    def recommend(block, size=4):
        asked.append((block, size))
        return [{**p, "name": f"{p['name']} ({block})"} for p in products][:size]

    context = {
        **delivery.SAMPLE,
        "recommendations": products,
        "recommend": recommend,
        "shop": {"name": "Tea & Co", "url": "https://shop.example.com"},
        "links": {"preferences": "https://b.example.com/p/abc", "unsubscribe": "https://b.example.com/u/abc"},
        **(data or {}),
    }
    return locales, templates.render(locales, "email", "en", context), asked


def test_blocks_make_responsive_html_with_the_content():
    locales, out, asked = _render(DESIGN)
    html = out.html
    assert "<mj-" not in html and "@media" in html  # MJML made it, with its responsive rules
    assert "Hi Olena!" in html and "Spring is here.<br />Take 10% off." in html
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html  # the marketer's text is text
    assert 'src="https://shop.example.com/hero.png"' in html and "Spring &amp; sun" in html
    assert 'href="https://shop.example.com/sale?x=1&amp;y=2"' in html
    assert "Tea set" in html and "Kettle" in html  # personal picks (`recommendations`)
    assert "Tea set (cart-cross-sell)" in html and ("cart-cross-sell", 3) in asked  # a block through recommend()
    assert "Ceramic mug" in html and "Still in your cart" not in html  # the order's lines; no cart: no cart block
    assert "120 points" in html and "WELCOME-7Q2K" in html
    assert "https://instagram.com/shop" in html
    assert "https://b.example.com/p/abc" in html and "https://b.example.com/u/abc" in html
    assert "Tea &amp; Co, 1 Main St" in html
    assert out.subject == "Hi Olena" and "Unsubscribe: https://b.example.com/u/abc" in out.text
    assert "<" not in out.text.replace("<b>not bold</b>", "")  # a plain-text part, not the HTML's CSS
    assert locales["en"]["email"]["design"][1]["align"] == "left"  # the design kept, its defaults filled in


def test_a_cart_block_shows_the_carts_lines():
    cart = {"lines": [{"name": "Green tea", "quantity": 3, "price": 4.5, "image_url": "https://x.example/t.png"}]}
    _, out, _ = _render([{"type": "cart", "title": "Still yours"}], {"cart": cart, "order": None})
    assert "Still yours" in out.html and "Green tea" in out.html and "https://x.example/t.png" in out.html
    assert "Ceramic mug" not in out.html


def test_a_hostile_first_name_is_escaped_everywhere():
    _, out, _ = _render(DESIGN, {"first_name": XSS, "customer": {"first_name": XSS}})
    assert XSS not in out.html and "&lt;script&gt;alert(1)&lt;/script&gt;" in out.html


def test_hostile_settings_are_escaped():
    hostile = [
        {"type": "heading", "text": '"><script>x()</script>'},
        {"type": "image", "src": 'https://x.example/a.png" onerror="x()', "alt": '"><img src=x onerror=y>'},
        {"type": "button", "label": "</mj-button><mj-raw><script>x()</script></mj-raw>", "url": "https://x.example"},
        {"type": "footer", "text": "<iframe src=//evil>", "unsubscribe": "<b>x</b>"},
    ]
    _, out, _ = _render(hostile)
    assert "<script>" not in out.html and "<iframe" not in out.html and "<img src=x" not in out.html
    assert 'onerror="x()' not in out.html and "&lt;b&gt;x&lt;/b&gt;" in out.html


@pytest.mark.parametrize(
    ("block", "field"),
    [
        ({"type": "button", "url": "javascript:alert(1)"}, "design[0].url"),
        ({"type": "button", "url": " JavaScript:alert(1)"}, "design[0].url"),
        ({"type": "image", "src": "data:text/html,x"}, "design[0].src"),
        ({"type": "social", "links": [{"network": "x", "url": "javascript:x"}]}, "design[0].links"),
        ({"type": "heading", "color": "red; background:url(x)"}, "design[0].color"),
        ({"type": "text", "text": "{{ first_name|safe }}"}, "design[0].text"),
        ({"type": "text", "text": "{{ oops"}, "design[0].text"),
        ({"type": "spacer", "height": 10_000}, "design[0].height"),
        ({"type": "products", "block": "a b'c"}, "design[0].block"),
        ({"type": "marquee"}, "design[0].type"),
        ({"type": "text", "onclick": "x"}, "design[0].onclick"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(block, field):
    with pytest.raises(ValidationFailed) as caught:
        email_design.to_html([block])
    assert field in [e["field"] for e in caught.value.errors]


def test_the_design_is_checked_on_save_naming_the_locale():
    definition = {
        "name": "designed",
        "locales": {"en": {"subject": "Hi", "email": {"design": [{"type": "button", "url": "javascript:x"}]}}},
    }
    with pytest.raises(ValidationFailed) as caught:
        service.validate(definition)
    assert caught.value.errors[0]["field"] == "locales.en.email.design[0].url"
    with pytest.raises(ValidationFailed) as caught:
        service.validate({**definition, "locales": {"en": {"subject": "Hi", "email": {"design": "nope"}}}})
    assert caught.value.errors[0]["field"] == "locales.en.email.design"


def test_save_writes_html_from_the_design_and_a_footer_always():
    clean = service.validate(
        {"name": "designed", "locales": {"en": {"subject": "Hi", "email": {"design": [{"type": "text", "text": "x"}]}}}}
    )
    email = clean["locales"]["en"]["email"]
    assert "{{ links.unsubscribe }}" in email["html"] and "{{ links.unsubscribe }}" in email["text"]
    links = {"unsubscribe": "https://u.example/x", "preferences": "https://p.example/x"}
    html = templates.render(clean["locales"], "email", "en", {"links": links}).html  # MJML's CSS braces stay CSS
    assert 'href="https://u.example/x"' in html and 'href="https://p.example/x"' in html and "{ " in html

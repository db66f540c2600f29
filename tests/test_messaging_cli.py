"""The messaging commands end to end: templates, channels, a test send, the log."""

from __future__ import annotations

import json

from cli_helpers import run_cli
from messaging_data import add_customer


def run(home, *args):
    return run_cli(home, *args)


def test_templates_channels_send_and_log(ws):
    home = ws.settings.home
    with ws.uow.session() as s:
        add_customer(s, "ann", consents=("email", "telegram"), telegram="777000", locale="uk", first_name="Олена")
    installed = json.loads(run(home, "templates", "install", "--json").stdout)["installed"]
    assert len(installed) == 22 and "cart_reminder_1" in installed
    preview = json.loads(run(home, "templates", "preview", "cart_reminder_1", "--customer", "ann", "--json").stdout)
    assert preview["locale"] == "uk" and "Олена" in preview["channels"]["email"]["html"]
    assert set(preview["channels"]) == {"email", "sms", "telegram", "webpush", "inapp"}

    keys = json.loads(run(home, "channels", "vapid-keys", "--json").stdout)
    assert (
        run(
            home,
            "channels",
            "set",
            "webpush",
            "vapid",
            f"vapid_private_key={keys['vapid_private_key']}",
            f"vapid_public_key={keys['vapid_public_key']}",
            "subject=mailto:ops@shop.example",
        ).returncode
        == 0
    )
    listed = run(home, "channels", "list", "--json").stdout
    assert keys["vapid_private_key"] not in listed and '"provider": "vapid"' in listed
    bad = run(home, "channels", "set", "email", "smtp", "port=abc")
    assert bad.returncode == 2 and "config.port" in bad.stderr and "config.from_address" in bad.stderr

    sent = json.loads(
        run(
            home, "send", "test", "--channel", "telegram", "--customer", "ann", "--template", "welcome_1", "--json"
        ).stdout
    )
    assert sent["status"] == "sent" and sent["channel"] == "telegram"  # the sandbox: recorded, not delivered
    refused = run(home, "send", "test", "--channel", "sms", "--customer", "ann", "--template", "welcome_1")
    assert refused.returncode == 1 and "sms: no consent" in refused.stdout
    log = json.loads(run(home, "messages", "--source", "test", "--json").stdout)
    assert log["counts"] == {"sent": 1, "suppressed": 1}
    missing = run(home, "send", "test", "--channel", "email", "--customer", "nobody", "--template", "welcome_1")
    assert missing.returncode == 2 and "no customer 'nobody'" in missing.stderr

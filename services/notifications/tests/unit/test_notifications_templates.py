"""Templates: per kind and channel, in the recipient's language with fallback, sandboxed, overridable."""
import pytest

from notifications import templates

DATA = {"match_id": "x", "member_id": "m1", "leader_id": "l1", "expires_at": "2026-01-20T18:00:00Z"}


def render(kind="match_proposed", channel="email", lang="en", role="member", overrides=None, data=DATA):
    return templates.render(kind, channel, preferred_language=lang, time_zone="America/Mexico_City",
                            context={"name": "Ana", "role": role, "data": data, "meeting": {}, "items": []},
                            overrides=overrides, unsubscribe_url="http://x/v1/unsubscribe?token=abc")


EVERYTHING = {**DATA, "re_proposal_follows": True, "name": "Circle", "reason": "storm",
              "original_start": "2026-01-20T18:00:00Z", "new_start": "2026-01-21T18:00:00Z",
              "start": "2026-01-20T18:00:00Z", "previous_start": "2026-01-19T18:00:00Z", "title": "Circle",
              "starts_at": "2026-01-20T18:00:00Z", "instrument": "PHQ-2", "band": "positive", "days_waiting": 12,
              "status": "waitlisted", "waitlist_position": 2, "code": "ABCD-EFGH",
              "link": "http://console/sign-in/callback?code=t", "purpose": "invitation", "role": "admin"}


@pytest.mark.parametrize("kind", templates.KINDS + templates.PLATFORM_KINDS)
def test_every_kind_renders_in_english_and_spanish_on_every_channel(kind):
    for lang in ("en", "es"):
        assert set(templates.SHIPPED[lang]) == set(templates.KINDS + templates.PLATFORM_KINDS)
        for channel in templates.PARTS:
            for meeting in ({}, {"name": "Circle"}):
                out = templates.render(kind, channel, preferred_language=lang, time_zone="UTC",
                                       context={"name": "Ana", "role": "leader", "data": EVERYTHING,
                                                "meeting": meeting, "items": ["one", "two"]})
                assert out["language"] == lang and out["text"].strip()


def test_spanish_with_region_falls_back_to_spanish_and_unknown_to_english():
    assert render(lang="es-MX")["subject"].startswith("Hemos encontrado")
    assert render(lang="de")["language"] == "en"


def test_email_has_text_html_and_the_unsubscribe_link_in_local_time():
    out = render()
    assert "Hello Ana" in out["text"] and "http://x/v1/unsubscribe?token=abc" in out["text"]
    assert "2026-01-20 12:00 (America/Mexico_City)" in out["text"]
    assert "<p>" in out["html"] and 'href="http://x/v1/unsubscribe?token=abc"' in out["html"]


def test_html_escapes_what_comes_from_events():
    out = render(kind="meeting_cancelled", data={"name": "<script>x</script>", "reason": None})
    assert "<script>" not in out["html"]


def test_overrides_replace_parts_for_their_language_only():
    overrides = {"en": {"subject": "Custom for {{ name }}"}}
    assert render(overrides=overrides)["subject"] == "Custom for Ana"
    assert render(overrides=overrides)["text"].startswith("Hello Ana")
    assert render(lang="es", overrides=overrides)["subject"].startswith("Hemos")


def test_the_sandbox_refuses_unsafe_templates():
    with pytest.raises(templates.TemplateProblem):
        render(overrides={"en": {"subject": "{{ name.__class__.__mro__ }}"}})
    with pytest.raises(templates.TemplateProblem):
        templates.check_template("{% if %}")


def test_the_sign_in_message_holds_the_link_and_the_code_and_no_unsubscribe_footer():
    data = {"code": "ABCD-EFGH", "link": "http://console/sign-in/callback?code=tok", "expires_at": "2026-01-20T18:00:00Z"}
    out = templates.render("sign_in", "email", preferred_language="es", time_zone="UTC",
                           context={"name": "", "role": "member", "data": data, "meeting": {}, "items": []})
    assert out["subject"] == "Tu código para entrar en Recovery Network"
    assert "ABCD-EFGH" in out["text"] and data["link"] in out["text"] and "ABCD-EFGH" in out["html"]
    assert "unsubscribe" not in out["html"] and "<hr>" not in out["html"]
    sms = templates.render("sign_in", "sms", preferred_language="en", time_zone="UTC",
                           context={"name": "", "role": "member", "data": data, "meeting": {}, "items": []})
    assert "ABCD-EFGH" in sms["text"]

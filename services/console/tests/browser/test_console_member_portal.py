"""The member's portal (issue 17, area 6) in a real browser: a member's journey on a 375x812 phone, in
Spanish, signed in by the emailed link — see their leader, register for a meeting, turn off SMS, give
share:leader, download their information, sign out everywhere. axe on every page, no horizontal scroll at
360 px, and no page shows the other member of the same organization."""
from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from shared.testing import eventually

LINK = re.compile(r"https?://[^\s\"'<>]+/sign-in/callback\?code=[^\s\"'<>]+")

ALL_DAYS = [{"day": d, "start": "08:00", "end": "22:00"} for d in range(7)]
MY_PAGES = ("/", "/my/sessions", "/my/meetings", "/my/messages", "/my/consents", "/my/information")


def link_from_mail(platform, email: str) -> str:
    """The sign-in link from the member's mail (other messages, such as a proposal, may arrive too)."""
    def arrived():
        links = [found.group(0) for m in platform.mail(to=email) if (found := LINK.search(m.get("text") or ""))]
        assert links, f"no sign-in email for {email} yet"
        return links[-1]
    return eventually(arrived, timeout=30, interval=0.3)


def _created(call):
    """Scheduling hears of people intake just registered through events: "not yet known" until then."""
    def attempt():
        answer = call()
        if answer.status_code == 422 and "not-yet-known" in answer.text:
            return None
        return answer.expect(201)
    return eventually(attempt, timeout=60, interval=0.5)


def _member(intake, site, first: str, tag: str, phone: str) -> dict:
    return intake.post("/v1/members", json={
        "first_name": first, "last_name": f"{first}Family{tag}", "email": f"{first.lower()}.{tag}@example.org",
        "phone": phone, "contact_channels": ["email", "sms", "inapp"], "preferred_language": "es",
        "site_id": site["id"], "languages": ["es"], "availability": ALL_DAYS, "date_of_birth": "1991-05-06",
        "consents": [{"purpose": "matching"}, {"purpose": "notify:email"}, {"purpose": "notify:sms"},
                     {"purpose": "notify:inapp"}]}).expect(201)


def test_a_member_on_a_phone_in_spanish_sees_their_leader_joins_a_meeting_and_chooses_how_to_hear_from_us(
        new_page, platform, organization, assert_accessible, assert_fits):
    org_id, site, intake = organization
    tag = uuid.uuid4().hex[:6]
    leader = intake.post("/v1/leaders", json={
        "first_name": "Rosa", "last_name": f"Leader{tag}", "email": f"rosa.{tag}@example.org", "site_ids": [site["id"]],
        "languages": ["es", "en"], "availability": ALL_DAYS, "capacity": 3, "bio": "Llevo diez años en recuperación.",
        "certifications": [{"name": "Peer Recovery Specialist", "expires_on": "2031-01-01"}]}).expect(201)
    ana = _member(intake, site, "Ana", tag, f"+1312555{int(tag, 16) % 10000:04d}")
    other = _member(intake, site, "Zoila", tag, f"+1773555{int(tag, 16) % 10000:04d}")   # same organization and site: never shown to Ana
    scheduling = platform.client("scheduling", platform.token(org_id, "admin"))
    start = datetime.now(ZoneInfo("America/Chicago")) + timedelta(days=1)
    meeting = _created(lambda: scheduling.post("/v1/meetings", json={
        "name": f"Círculo de la tarde {tag}", "site_id": site["id"], "facilitator_id": leader["id"], "capacity": 10,
        "attendance_mode": "in_person", "is_public": True, "rrule": "FREQ=WEEKLY", "first_start_local": start.strftime("%Y-%m-%dT18:00"),
        "duration_minutes": 60}))

    page = new_page(width=375, height=812, locale="es-ES")

    # sign in by the emailed link
    page.goto("/sign-in")
    page.get_by_label("Correo electrónico").fill(ana["email"])
    page.get_by_role("button", name="Enviarme un enlace para iniciar sesión").click()
    expect(page.get_by_role("heading", name="Revisa tu correo", level=1)).to_be_visible()
    page.goto(link_from_mail(platform, ana["email"]))
    page.get_by_role("button", name="Continuar").click()

    # home: their peer leader (matching proposes Rosa once it hears of Ana), and accepting
    expect(page.get_by_role("heading", name="Hola, Ana", level=1)).to_be_visible()
    leader_section = page.get_by_role("region", name="Mi líder de pares")

    def proposed():
        page.goto("/")
        return leader_section.get_by_text("Rosa", exact=True).count() > 0
    eventually(proposed, timeout=60, interval=1, message="Rosa proposed to Ana")
    expect(leader_section).to_contain_text("Llevo diez años en recuperación.")
    expect(leader_section).to_contain_text("Habla: español")
    assert_accessible(page)
    leader_section.get_by_role("button", name="Sí, acepto").click()
    expect(page.get_by_role("status")).to_contain_text("Aceptaste.")
    expect(leader_section).to_contain_text("Rosa es tu líder de pares.")

    # meetings: register
    page.get_by_role("navigation", name="Tus páginas").get_by_role("link", name="Reuniones").click()
    expect(page.get_by_role("heading", name="Reuniones", level=1)).to_be_visible()
    assert_accessible(page)
    page.get_by_role("button", name=f"Inscribirme en {meeting['name']}").click()
    expect(page.get_by_role("status")).to_contain_text("Tienes tu lugar.")
    expect(page.get_by_role("button", name=f"Cancelar mi lugar en {meeting['name']}")).to_be_visible()
    page.get_by_role("button", name="Obtener mi enlace de calendario").click()
    expect(page.get_by_label("Tu enlace de calendario")).not_to_have_value("")

    # messages: turn off SMS
    page.get_by_role("navigation", name="Tus páginas").get_by_role("link", name="Mensajes").click()
    expect(page.get_by_role("heading", name="Mensajes", level=1)).to_be_visible()
    assert_accessible(page)
    sms = page.get_by_label("Mensajes de texto (SMS)")
    expect(sms).to_be_checked()
    sms.uncheck()
    page.get_by_role("button", name="Guardar cómo te contactamos").click()
    expect(page.get_by_role("status")).to_contain_text("Guardado.")
    expect(page.get_by_label("Mensajes de texto (SMS)")).not_to_be_checked()
    expect(page.get_by_label("Correo electrónico", exact=True)).to_be_checked()
    preferences = platform.client("notifications", platform.token(org_id, "admin")).get(
        f"/v1/people/{ana['id']}/preferences").expect(200)
    assert preferences["channels"].get("sms") is False

    # consents: give share:leader, each with what it means
    page.get_by_role("navigation", name="Tus páginas").get_by_role("link", name="Mis decisiones").click()
    expect(page.get_by_role("heading", name="Mis decisiones", level=1)).to_be_visible()
    assert_accessible(page)
    meaning = "Tu líder de pares puede ver tu correo y tu teléfono para poder comunicarse contigo."
    page.get_by_role("button", name=f"Aceptar: {meaning}").click()
    expect(page.get_by_role("status")).to_contain_text("Tu decisión está guardada.")
    expect(page.get_by_role("button", name=f"Retirar: {meaning}")).to_be_visible()
    consents = intake.get(f"/v1/members/{ana['id']}/consents").expect(200)
    assert "share:leader" in json.dumps(consents)

    # every page of the portal: axe, no horizontal scroll at 360 px, nobody else's name
    page.set_viewport_size({"width": 360, "height": 740})
    for path in MY_PAGES:
        page.goto(path)
        expect(page.get_by_role("main")).to_be_visible()
        assert_accessible(page)
        assert_fits(page)
        assert other["last_name"] not in page.content() and "Zoila" not in page.content(), path
    page.set_viewport_size({"width": 375, "height": 812})

    # download my information
    page.goto("/my/information")
    expect(page.get_by_role("heading", name="Mi información", level=1)).to_be_visible()
    expect(page.get_by_role("region", name="Sobre mí")).to_contain_text(ana["email"])
    with page.expect_download() as download:
        page.get_by_role("link", name="Descargar mi información (JSON)").click()
    exported = json.loads(open(download.value.path(), encoding="utf-8").read())
    assert set(exported) == {"intake", "matching", "scheduling", "notifications"}
    assert exported["intake"]["member"]["id"] == ana["id"]
    assert "Zoila" not in json.dumps(exported)

    # sign out everywhere: this browser is signed out, and the old token is refused
    page.get_by_role("button", name="Cerrar mi sesión en todas partes").click()
    expect(page.get_by_role("heading", name="Iniciar sesión", level=1)).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Has cerrado sesión en todos los dispositivos.")
    page.goto("/my/messages")
    expect(page.get_by_role("heading", name="Iniciar sesión", level=1)).to_be_visible()


def test_staff_get_no_member_pages(page, platform, organization, sign_in_as):
    org_id, site, _intake = organization
    sign_in_as(page, platform.token(org_id, "coordinator", sites=[site["id"]]), "coordinator", org_id)
    answer = page.goto("/my/messages")
    assert answer.status == 404

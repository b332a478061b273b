"""Message templates: one per event kind and channel, per language (en, es shipped) with a fallback
to English, rendered by Jinja2's SandboxedEnvironment (organizations' overrides are untrusted text).

Channels and their parts:  email: subject, text, html   sms: text   inapp: subject (title), text
An organization override (stored by the API) replaces any of those parts for one kind, channel and
language; parts it does not give come from the shipped template.
"""
from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape

from shared.clock import zone_or_utc as zone

from notifications.model import language_candidates, parse_time

KINDS = ("match_proposed", "match_accepted", "match_ended", "meeting_updated", "meeting_cancelled",
         "occurrence_cancelled", "occurrence_moved", "registration_created", "registration_promoted", "session_booked",
         "session_rescheduled", "session_cancelled", "reminder", "risk_flagged", "waiting_too_long", "leader_stretched", "leader_ready",
         "digest")
# The platform's own messages: shipped only, never replaced by an organization's template (the sign-in
# message must carry its code and link whatever an organization writes).
PLATFORM_KINDS = ("sign_in",)
PARTS = {"email": ("subject", "text", "html"), "sms": ("text",), "inapp": ("subject", "text")}

# {language: {kind: {"subject", "text", "sms"}}}. Context: name, role, data (the event's data),
# local(moment) formats a time in the recipient's zone, meeting ({name, time_zone} of the event's
# meeting when known, else {}), items (digest only).
SHIPPED: dict[str, dict[str, dict[str, str]]] = {
    "en": {
        "match_proposed": {
            "subject": "{% if role == 'leader' %}A new member was proposed to you{% else %}We found a peer leader for you{% endif %}",
            "text": "Hello {{ name }},\n\n{% if role == 'leader' %}A member has been proposed for you to support. Please review the proposal and answer by {{ local(data.expires_at) }}.{% else %}We have proposed a peer leader for you. Please let us know by {{ local(data.expires_at) }} whether you would like to go ahead.{% endif %}\n",
            "sms": "Recovery Network: {% if role == 'leader' %}a member was proposed to you{% else %}we found a peer leader for you{% endif %}. Answer by {{ local(data.expires_at) }}.",
        },
        "match_accepted": {
            "subject": "Your peer support match is confirmed",
            "text": "Hello {{ name }},\n\nThe match has been accepted. We will suggest times for your first one-on-one session soon.\n",
            "sms": "Recovery Network: your match is confirmed.",
        },
        "match_ended": {
            "subject": "Your peer support match has ended",
            "text": "Hello {{ name }},\n\nThe match has ended.{% if data.re_proposal_follows %} We are looking for a new match and will be in touch.{% endif %}\n",
            "sms": "Recovery Network: your match has ended.",
        },
        "meeting_updated": {
            "subject": "{{ data.name }} was updated",
            "text": "Hello {{ name }},\n\nThe details of the meeting \"{{ data.name }}\" changed. Please check the schedule.\n",
            "sms": "Recovery Network: \"{{ data.name }}\" was updated.",
        },
        "meeting_cancelled": {
            "subject": "{{ data.name }} is cancelled",
            "text": "Hello {{ name }},\n\nThe meeting \"{{ data.name }}\" has been cancelled.{% if data.reason %} Reason: {{ data.reason }}{% endif %}\n",
            "sms": "Recovery Network: \"{{ data.name }}\" is cancelled.",
        },
        "occurrence_cancelled": {
            "subject": "{{ data.name }} on {{ local(data.original_start) }} is cancelled",
            "text": "Hello {{ name }},\n\nThe meeting \"{{ data.name }}\" on {{ local(data.original_start) }} will not take place.{% if data.reason %} Reason: {{ data.reason }}{% endif %}\n",
            "sms": "Recovery Network: \"{{ data.name }}\" on {{ local(data.original_start) }} is cancelled.",
        },
        "occurrence_moved": {
            "subject": "{{ data.name }} has moved",
            "text": "Hello {{ name }},\n\nThe meeting \"{{ data.name }}\" planned for {{ local(data.original_start) }} now takes place on {{ local(data.new_start) }}.\n",
            "sms": "Recovery Network: \"{{ data.name }}\" moved to {{ local(data.new_start) }}.",
        },
        "registration_created": {
            "subject": "{% if data.status == 'waitlisted' %}You are on the waiting list for {{ meeting.get('name', 'a meeting') }}{% else %}You are registered for {{ meeting.get('name', 'a meeting') }}{% endif %}",
            "text": "Hello {{ name }},\n\n{% if data.status == 'waitlisted' %}The meeting \"{{ meeting.get('name', '') }}\" is full; you are number {{ data.waitlist_position }} on the waiting list. We will tell you when a seat opens.{% else %}You are registered for the meeting \"{{ meeting.get('name', '') }}\".{% endif %}\n",
            "sms": "Recovery Network: {% if data.status == 'waitlisted' %}you are on the waiting list for{% else %}you are registered for{% endif %} {{ meeting.get('name', 'a meeting') }}.",
        },
        "registration_promoted": {
            "subject": "You have a seat at {{ meeting.get('name', 'the meeting') }}",
            "text": "Hello {{ name }},\n\nA seat opened up and it is yours: you are now registered for {{ meeting.get('name', 'the meeting') }}.\n",
            "sms": "Recovery Network: a seat opened up, you are registered for {{ meeting.get('name', 'the meeting') }}.",
        },
        "session_booked": {
            "subject": "One-on-one session booked for {{ local(data.start) }}",
            "text": "Hello {{ name }},\n\nYour one-on-one session is booked for {{ local(data.start) }}.\n",
            "sms": "Recovery Network: session booked for {{ local(data.start) }}.",
        },
        "session_rescheduled": {
            "subject": "One-on-one session moved to {{ local(data.start) }}",
            "text": "Hello {{ name }},\n\nYour one-on-one session planned for {{ local(data.previous_start) }} now takes place on {{ local(data.start) }}.\n",
            "sms": "Recovery Network: session moved to {{ local(data.start) }}.",
        },
        "session_cancelled": {
            "subject": "One-on-one session on {{ local(data.start) }} cancelled",
            "text": "Hello {{ name }},\n\nYour one-on-one session on {{ local(data.start) }} has been cancelled.{% if data.reason %} Reason: {{ data.reason }}{% endif %}\n",
            "sms": "Recovery Network: session on {{ local(data.start) }} cancelled.",
        },
        "reminder": {
            "subject": "Reminder: {{ data.title }} at {{ local(data.starts_at) }}",
            "text": "Hello {{ name }},\n\nThis is a reminder: {{ data.title }} starts at {{ local(data.starts_at) }}.\n",
            "sms": "Reminder: {{ data.title }} at {{ local(data.starts_at) }}.",
        },
        "risk_flagged": {
            "subject": "URGENT: a member's screening needs your attention",
            "text": "Hello {{ name }},\n\nA {{ data.instrument }} screening (band: {{ data.band }}) flagged a member of your site: {{ data.reason }}.\nMember id: {{ data.member_id }}. Please follow up today.\n",
            "sms": "URGENT Recovery Network: screening flag for member {{ data.member_id }} ({{ data.reason }}).",
        },
        "waiting_too_long": {
            "subject": "A member has waited {{ data.days_waiting }} days for a peer leader",
            "text": "Hello {{ name }},\n\nMember {{ data.member_id }} has been waiting {{ data.days_waiting }} days for a match. Reason: {{ data.reason }}.\n",
            "sms": "Recovery Network: member {{ data.member_id }} waiting {{ data.days_waiting }} days.",
        },
        "leader_stretched": {
            "subject": "A peer leader at your site says they are stretched",
            "text": "Hello {{ name }},\n\nA peer leader at your site says they are stretched{% if data.get('since') %} (since {{ local(data.since) }}){% endif %}. New members are not proposed to them until the pause is lifted; the members they support now stay with them.\nOpen Peer leaders in the console to see who it is, read any note they left for you, and check in with them. They or you can lift the pause when they are ready.\n",
            "sms": "Recovery Network: a peer leader at your site says they are stretched. New proposals to them are paused. See Peer leaders in the console.",
        },
        "leader_ready": {
            "subject": "{% if role == 'leader' %}New members can be proposed to you again{% else %}A peer leader is ready for new members again{% endif %}",
            "text": "Hello {{ name }},\n\n{% if role == 'leader' %}Your coordinator lifted the pause you asked for, so new members can be proposed to you again. If you still need a break, you can say you are stretched again at any time on your My details page.{% else %}A peer leader at your site who said they were stretched is ready for new members again. New proposals to them have resumed.{% endif %}\n",
            "sms": "Recovery Network: {% if role == 'leader' %}new members can be proposed to you again{% else %}a peer leader at your site is ready for new members again{% endif %}.",
        },
        "digest": {
            "subject": "Your Recovery Network updates",
            "text": "Hello {{ name }},\n\nHere is what changed since your last update:\n{% for item in items %}\n- {{ item }}{% endfor %}\n",
            "sms": "Recovery Network: {{ items|length }} updates.",
        },
        "sign_in": {
            "subject": "{% if data.get('purpose') == 'invitation' %}You are invited to Recovery Network{% else %}Your Recovery Network sign-in code{% endif %}",
            "text": "Hello,\n\n{% if data.get('purpose') == 'invitation' %}You have been invited to your organization's Recovery Network as {{ 'an administrator' if data.get('role') == 'admin' else 'a site coordinator' }}. {% endif %}To sign in, open this link:\n{{ data.link }}\n\nOr enter this code: {{ data.code }}\n\nThe code can be used once and expires at {{ local(data.expires_at) }}. If you did not ask to sign in, ignore this message: nobody can sign in without the code.\n",
            "sms": "Recovery Network sign-in code: {{ data.code }} (once, until {{ local(data.expires_at) }}). Or open {{ data.link }}",
        },
    },
    "es": {
        "match_proposed": {
            "subject": "{% if role == 'leader' %}Te hemos propuesto un nuevo miembro{% else %}Hemos encontrado un líder de apoyo para ti{% endif %}",
            "text": "Hola {{ name }}:\n\n{% if role == 'leader' %}Te hemos propuesto un miembro para acompañar. Revisa la propuesta y responde antes del {{ local(data.expires_at) }}.{% else %}Te hemos propuesto un líder de apoyo entre pares. Dinos antes del {{ local(data.expires_at) }} si quieres continuar.{% endif %}\n",
            "sms": "Recovery Network: {% if role == 'leader' %}te propusimos un miembro{% else %}encontramos un líder de apoyo para ti{% endif %}. Responde antes del {{ local(data.expires_at) }}.",
        },
        "match_accepted": {
            "subject": "Tu acompañamiento entre pares está confirmado",
            "text": "Hola {{ name }}:\n\nLa propuesta fue aceptada. Pronto te sugeriremos horarios para tu primera sesión individual.\n",
            "sms": "Recovery Network: tu acompañamiento está confirmado.",
        },
        "match_ended": {
            "subject": "Tu acompañamiento entre pares ha terminado",
            "text": "Hola {{ name }}:\n\nEl acompañamiento ha terminado.{% if data.re_proposal_follows %} Estamos buscando una nueva opción y nos pondremos en contacto.{% endif %}\n",
            "sms": "Recovery Network: tu acompañamiento ha terminado.",
        },
        "meeting_updated": {
            "subject": "{{ data.name }} ha cambiado",
            "text": "Hola {{ name }}:\n\nLos detalles de la reunión \"{{ data.name }}\" han cambiado. Consulta el calendario.\n",
            "sms": "Recovery Network: \"{{ data.name }}\" ha cambiado.",
        },
        "meeting_cancelled": {
            "subject": "{{ data.name }} se ha cancelado",
            "text": "Hola {{ name }}:\n\nLa reunión \"{{ data.name }}\" se ha cancelado.{% if data.reason %} Motivo: {{ data.reason }}{% endif %}\n",
            "sms": "Recovery Network: \"{{ data.name }}\" se ha cancelado.",
        },
        "occurrence_cancelled": {
            "subject": "{{ data.name }} del {{ local(data.original_start) }} se ha cancelado",
            "text": "Hola {{ name }}:\n\nLa reunión \"{{ data.name }}\" del {{ local(data.original_start) }} no se realizará.{% if data.reason %} Motivo: {{ data.reason }}{% endif %}\n",
            "sms": "Recovery Network: \"{{ data.name }}\" del {{ local(data.original_start) }} se ha cancelado.",
        },
        "occurrence_moved": {
            "subject": "{{ data.name }} cambió de fecha",
            "text": "Hola {{ name }}:\n\nLa reunión \"{{ data.name }}\" prevista para el {{ local(data.original_start) }} será el {{ local(data.new_start) }}.\n",
            "sms": "Recovery Network: \"{{ data.name }}\" pasa al {{ local(data.new_start) }}.",
        },
        "registration_created": {
            "subject": "{% if data.status == 'waitlisted' %}Estás en la lista de espera de {{ meeting.get('name', 'una reunión') }}{% else %}Tienes lugar en {{ meeting.get('name', 'una reunión') }}{% endif %}",
            "text": "Hola {{ name }}:\n\n{% if data.status == 'waitlisted' %}La reunión \"{{ meeting.get('name', '') }}\" está completa; tienes el número {{ data.waitlist_position }} en la lista de espera. Te avisaremos cuando se libere un lugar.{% else %}Tienes lugar en la reunión \"{{ meeting.get('name', '') }}\".{% endif %}\n",
            "sms": "Recovery Network: {% if data.status == 'waitlisted' %}estás en la lista de espera de{% else %}tienes lugar en{% endif %} {{ meeting.get('name', 'una reunión') }}.",
        },
        "registration_promoted": {
            "subject": "Tienes un lugar en {{ meeting.get('name', 'la reunión') }}",
            "text": "Hola {{ name }}:\n\nSe liberó un lugar en {{ meeting.get('name', 'la reunión') }} y es tuyo: ya no estás en la lista de espera.\n",
            "sms": "Recovery Network: se liberó un lugar, ya tienes lugar en {{ meeting.get('name', 'la reunión') }}.",
        },
        "session_booked": {
            "subject": "Sesión individual reservada para el {{ local(data.start) }}",
            "text": "Hola {{ name }}:\n\nTu sesión individual está reservada para el {{ local(data.start) }}.\n",
            "sms": "Recovery Network: sesión reservada para el {{ local(data.start) }}.",
        },
        "session_rescheduled": {
            "subject": "Sesión individual movida al {{ local(data.start) }}",
            "text": "Hola {{ name }}:\n\nTu sesión individual prevista para el {{ local(data.previous_start) }} será el {{ local(data.start) }}.\n",
            "sms": "Recovery Network: sesión movida al {{ local(data.start) }}.",
        },
        "session_cancelled": {
            "subject": "Sesión individual del {{ local(data.start) }} cancelada",
            "text": "Hola {{ name }}:\n\nTu sesión individual del {{ local(data.start) }} se ha cancelado.{% if data.reason %} Motivo: {{ data.reason }}{% endif %}\n",
            "sms": "Recovery Network: sesión del {{ local(data.start) }} cancelada.",
        },
        "reminder": {
            "subject": "Recordatorio: {{ data.title }} a las {{ local(data.starts_at) }}",
            "text": "Hola {{ name }}:\n\nTe recordamos que {{ data.title }} empieza el {{ local(data.starts_at) }}.\n",
            "sms": "Recordatorio: {{ data.title }} el {{ local(data.starts_at) }}.",
        },
        "risk_flagged": {
            "subject": "URGENTE: la evaluación de un miembro requiere tu atención",
            "text": "Hola {{ name }}:\n\nUna evaluación {{ data.instrument }} (nivel: {{ data.band }}) señaló a un miembro de tu sede: {{ data.reason }}.\nId del miembro: {{ data.member_id }}. Haz el seguimiento hoy, por favor.\n",
            "sms": "URGENTE Recovery Network: alerta de evaluación del miembro {{ data.member_id }} ({{ data.reason }}).",
        },
        "waiting_too_long": {
            "subject": "Un miembro lleva {{ data.days_waiting }} días esperando un líder de apoyo",
            "text": "Hola {{ name }}:\n\nEl miembro {{ data.member_id }} lleva {{ data.days_waiting }} días esperando. Motivo: {{ data.reason }}.\n",
            "sms": "Recovery Network: el miembro {{ data.member_id }} lleva {{ data.days_waiting }} días esperando.",
        },
        "leader_stretched": {
            "subject": "Un líder de apoyo de tu sede dice que está al límite",
            "text": "Hola {{ name }}:\n\nUn líder de apoyo de tu sede dice que está al límite{% if data.get('since') %} (desde el {{ local(data.since) }}){% endif %}. No se le proponen miembros nuevos hasta que se levante la pausa; los miembros que acompaña ahora siguen con esa persona.\nAbre Líderes de apoyo en la consola para ver quién es, leer la nota que te haya dejado y hablar con esa persona. Tú o esa persona pueden levantar la pausa cuando esté lista.\n",
            "sms": "Recovery Network: un líder de apoyo de tu sede dice que está al límite. Las propuestas nuevas están en pausa. Mira Líderes de apoyo en la consola.",
        },
        "leader_ready": {
            "subject": "{% if role == 'leader' %}Ya te pueden proponer miembros nuevos{% else %}Un líder de apoyo vuelve a estar disponible para miembros nuevos{% endif %}",
            "text": "Hola {{ name }}:\n\n{% if role == 'leader' %}Tu coordinador/a levantó la pausa que pediste: ya te pueden proponer miembros nuevos. Si todavía necesitas un descanso, puedes volver a decir que estás al límite cuando quieras en la página Mis datos.{% else %}Un líder de apoyo de tu sede que dijo estar al límite vuelve a estar disponible para miembros nuevos. Las propuestas se han reanudado.{% endif %}\n",
            "sms": "Recovery Network: {% if role == 'leader' %}ya te pueden proponer miembros nuevos{% else %}un líder de apoyo de tu sede vuelve a estar disponible para miembros nuevos{% endif %}.",
        },
        "digest": {
            "subject": "Tus novedades de Recovery Network",
            "text": "Hola {{ name }}:\n\nEsto es lo que cambió desde tu último resumen:\n{% for item in items %}\n- {{ item }}{% endfor %}\n",
            "sms": "Recovery Network: {{ items|length }} novedades.",
        },
        "sign_in": {
            "subject": "{% if data.get('purpose') == 'invitation' %}Te invitamos a Recovery Network{% else %}Tu código para entrar en Recovery Network{% endif %}",
            "text": "Hola:\n\n{% if data.get('purpose') == 'invitation' %}Te han invitado a Recovery Network de tu organización como {{ 'administrador/a' if data.get('role') == 'admin' else 'coordinador/a de sede' }}. {% endif %}Para entrar, abre este enlace:\n{{ data.link }}\n\nO escribe este código: {{ data.code }}\n\nEl código sirve una sola vez y caduca el {{ local(data.expires_at) }}. Si no pediste entrar, ignora este mensaje: nadie puede entrar sin el código.\n",
            "sms": "Código de Recovery Network: {{ data.code }} (una vez, hasta el {{ local(data.expires_at) }}). O abre {{ data.link }}",
        },
    },
}

UNSUBSCRIBE_TEXT = {
    "en": "To stop these emails: {url}",
    "es": "Para dejar de recibir estos correos: {url}",
}

HTML_LAYOUT = """<!doctype html>
<html lang="{{ lang }}"><head><meta charset="utf-8"><title>{{ subject }}</title></head>
<body style="font-family: sans-serif; line-height: 1.5">
{% for paragraph in paragraphs %}<p>{{ paragraph }}</p>
{% endfor %}{% if unsubscribe_url %}<hr><p style="font-size: small"><a href="{{ unsubscribe_url }}">{{ unsubscribe_label }}</a></p>
{% endif %}</body></html>
"""

_text_env = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined, keep_trailing_newline=True)
_html_env = SandboxedEnvironment(autoescape=True, undefined=StrictUndefined)


@lru_cache(maxsize=1024)
def _compiled(html: bool, source: str) -> Template:
    """A template compiled once per source text (shipped or an organization's); compiling costs far
    more than rendering, and a compiled template is safe to render from several threads."""
    return (_html_env if html else _text_env).from_string(source)


class TemplateProblem(ValueError):
    """An organization's template does not compile or does not render."""


def check_template(source: str) -> None:
    """Compile an override (the API refuses one that does not compile)."""
    try:
        _text_env.parse(source)
    except TemplateError as exc:
        raise TemplateProblem(str(exc)) from exc


def local_formatter(time_zone: str | None, language: str):
    tz = zone(time_zone)

    def local(moment) -> str:
        if moment in (None, ""):
            return ""
        when = parse_time(moment) if not isinstance(moment, datetime) else moment
        when = when.astimezone(tz)
        if language.startswith("es"):
            return when.strftime("%d/%m/%Y %H:%M") + f" ({tz.key})"
        return when.strftime("%Y-%m-%d %H:%M") + f" ({tz.key})"

    return local


def _shipped(kind: str, lang: str) -> dict | None:
    return SHIPPED.get(lang, {}).get(kind)


def pick_language(kind: str, channel: str, preferred: str | None, overrides: dict[str, dict]) -> str:
    """The first of the person's languages that has a template (override or shipped), else English."""
    for lang in language_candidates(preferred):
        if lang in overrides or _shipped(kind, lang):
            return lang
    return "en"


def render(kind: str, channel: str, *, preferred_language: str | None, time_zone: str | None, context: dict,
           overrides: dict[str, dict] | None = None, unsubscribe_url: str | None = None) -> dict:
    """Render one message. ``overrides``: {language: {part: source}} of the organization for this kind
    and channel. Returns {'language', and the channel's parts}."""
    overrides = overrides or {}
    lang = pick_language(kind, channel, preferred_language, overrides)
    shipped = _shipped(kind, lang) or _shipped(kind, "en")
    override = overrides.get(lang, {})
    ctx = dict(context)
    ctx["local"] = local_formatter(time_zone, lang)
    out: dict = {"language": lang}
    try:
        if channel == "email":
            out["subject"] = _compiled(False, override.get("subject") or shipped["subject"]).render(ctx).strip()
            text = _compiled(False, override.get("text") or shipped["text"]).render(ctx)
            base = lang.split("-")[0]
            if unsubscribe_url:
                text = text.rstrip("\n") + "\n\n--\n" + UNSUBSCRIBE_TEXT.get(base, UNSUBSCRIBE_TEXT["en"]).format(url=unsubscribe_url) + "\n"
            out["text"] = text
            if override.get("html"):
                out["html"] = _compiled(True, override["html"]).render(
                    {**ctx, "unsubscribe_url": unsubscribe_url or ""})
            else:
                body = text.split("\n--\n")[0]
                out["html"] = _compiled(True, HTML_LAYOUT).render(
                    lang=lang, subject=out["subject"],
                    paragraphs=[Markup("<br>").join(escape(line) for line in p.split("\n"))
                                for p in body.strip().split("\n\n")],
                    unsubscribe_url=unsubscribe_url or "",
                    unsubscribe_label=UNSUBSCRIBE_TEXT.get(base, UNSUBSCRIBE_TEXT["en"]).split(":")[0])
        elif channel == "sms":
            out["text"] = _compiled(False, override.get("text") or shipped["sms"]).render(ctx).strip()
        elif channel == "inapp":
            out["subject"] = _compiled(False, override.get("subject") or shipped["subject"]).render(ctx).strip()
            out["text"] = _compiled(False, override.get("text") or shipped["text"]).render(ctx).strip()
        else:
            raise TemplateProblem(f"no templates for channel {channel}")
    except TemplateError as exc:
        raise TemplateProblem(f"{kind}/{channel}/{lang}: {exc}") from exc
    return out

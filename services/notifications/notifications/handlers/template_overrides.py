"""Use cases of organizations' wording overrides (templates.py renders them, sandboxed)."""
from __future__ import annotations

from shared.errors import Invalid, NotFound
from shared.unit_of_work import UnitOfWork

from notifications import templates
from notifications.repository import Store


def overrides(store: Store, organization_id: str) -> list[dict]:
    return store.templates(organization_id)


def save(uow: UnitOfWork, organization_id: str, kind: str, channel: str, language: str, parts: dict) -> dict:
    """Override one kind of message on one channel in one language; Invalid names a part that does not
    belong to the channel or does not compile."""
    if not parts:
        raise Invalid({"text": ["Missing data for required field."]})
    allowed = templates.PARTS[channel]
    for part, source in parts.items():
        if part not in allowed:
            raise Invalid({part: [f"channel {channel} has no such part (has {', '.join(allowed)})"]})
        try:
            templates.check_template(source)
        except templates.TemplateProblem as exc:
            raise Invalid({part: [str(exc)]}) from exc
    return Store.of(uow).save_template(organization_id, kind, channel, language.lower(), parts)


def delete(uow: UnitOfWork, organization_id: str, kind: str, channel: str, language: str) -> None:
    if not Store.of(uow).delete_template(organization_id, kind, channel, language.lower()):
        raise NotFound("No such template override.")


def preview(store: Store, organization_id: str, kind: str, channel: str, language: str, body: dict) -> dict:
    """How a message would read with sample data; Invalid when it does not render."""
    overrides_ = store.template_overrides(organization_id, kind, channel)
    if body.get("parts") is not None:  # a draft: checked like a save, shown in place of the saved wording
        draft = {part: source for part, source in body["parts"].items() if source and source.strip()}
        allowed = templates.PARTS[channel]
        for part, source in draft.items():
            if part not in allowed:
                raise Invalid({part: [f"channel {channel} has no such part (has {', '.join(allowed)})"]})
            try:
                templates.check_template(source)
            except templates.TemplateProblem as exc:
                raise Invalid({part: [str(exc)]}) from exc
        overrides_ = {**overrides_, language.lower(): draft}
    context = {"name": body["name"], "role": body["role"], "data": body["data"], "meeting": body["meeting"],
               "items": body["items"]}
    try:
        return templates.render(kind, channel, preferred_language=language, time_zone=body["time_zone"],
                                context=context, overrides=overrides_,
                                unsubscribe_url="https://example.invalid/unsubscribe" if channel == "email" else None)
    except templates.TemplateProblem as exc:
        raise Invalid({"data": [str(exc)]}) from exc

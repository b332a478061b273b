"""How the email headers go out on the wire (no server needed: the bytes smtplib would send)."""
from __future__ import annotations

import re
from email.message import EmailMessage

from notifications.channels import MAIL_POLICY


def _header_lines(msg: EmailMessage, name: str) -> list[str]:
    head = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n")).split(b"\r\n\r\n", 1)[0].decode("ascii")
    lines = head.split("\r\n")
    start = next(i for i, line in enumerate(lines) if line.lower().startswith(name.lower() + ":"))
    end = start + 1
    while end < len(lines) and lines[end][:1] in (" ", "\t"):
        end += 1
    return lines[start:end]


def test_a_long_list_unsubscribe_stays_one_plain_url():
    url = "https://notify.example.org/v1/unsubscribe?token=" + "A" * 180 + "." + "B" * 43
    msg = EmailMessage(policy=MAIL_POLICY)
    msg["List-Unsubscribe"] = f"<{url}>"
    msg["Subject"] = "Hemos encontrado un líder de apoyo para ti, con un asunto largo que se pliega"
    msg.set_content("hola")
    assert _header_lines(msg, "List-Unsubscribe") == [f"List-Unsubscribe: <{url}>"]
    # other headers keep the default policy: the non-ASCII subject is still encoded and folded
    subject = _header_lines(msg, "Subject")
    assert len(subject) > 1 and "=?utf-8?" in subject[0]


def test_several_entries_fold_between_entries_only():
    mailto, url = "<mailto:unsubscribe@example.org?subject=unsubscribe>", "<https://x.example/u?token=" + "t" * 90 + ">"
    msg = EmailMessage(policy=MAIL_POLICY)
    msg["List-Unsubscribe"] = f"{mailto}, {url}"
    lines = _header_lines(msg, "List-Unsubscribe")
    assert lines == [f"List-Unsubscribe: {mailto},", f" {url}"]
    assert re.sub(r"\r\n(?=[ \t])", "", "\r\n".join(lines)) == f"List-Unsubscribe: {mailto}, {url}"

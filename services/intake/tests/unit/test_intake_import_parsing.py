"""Reading CSV and JSON-lines uploads into member-shaped rows (no servers)."""
import pytest

from intake import schemas


def test_csv_rows_become_member_fields_and_unreadable_rows_are_reported():
    body = ("external_id,first_name,languages,availability,consents\n"
            "X1,Ana,pt; en,mon 9:00-11:00|4 18:00-20:00,matching;notify:email\n"
            "X2,Ben,en,someday 1-2,\n"
            "X3,Cy,en,,,extra\n").encode()
    rows = schemas.parse_import(body, "csv")
    assert rows[0] == (1, {"external_id": "X1", "first_name": "Ana", "languages": ["pt", "en"],
                           "availability": [{"day": 0, "start": "09:00", "end": "11:00"},
                                            {"day": 4, "start": "18:00", "end": "20:00"}],
                           "consents": [{"purpose": "matching"}, {"purpose": "notify:email"}]}, None)
    assert rows[1][2] and "availability" in rows[1][2]
    assert rows[2][2] and "_row" in rows[2][2]


def test_unknown_columns_and_missing_header_are_named():
    rows = schemas.parse_import(b"first_name,shoe_size\nAna,9\n", "csv")
    assert rows[0][2] == {"shoe_size": ["Unknown column."]}
    with pytest.raises(schemas.RowError):
        schemas.parse_import(b"last_name\nSilva\n", "csv")
    with pytest.raises(schemas.RowError):
        schemas.parse_import(b"\xff\xfe", "csv")


def test_load_import_row_names_fields():
    with pytest.raises(schemas.RowError) as exc:
        schemas.load_import_row({"first_name": "A", "meeting_mode": "zoom"}, "site1")
    assert "meeting_mode" in exc.value.errors
    with pytest.raises(schemas.RowError) as exc:
        schemas.load_import_row({"first_name": "A", "site_id": "other"}, "site1")
    assert "site_id" in exc.value.errors
    assert schemas.load_import_row({"first_name": "A"}, "site1")["site_id"] == "site1"

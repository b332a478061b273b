"""Issue 13: whether a session lies wholly inside a person's weekly availability, in their zone."""
from datetime import datetime
from zoneinfo import ZoneInfo

from scheduling import model

NY = ZoneInfo("America/New_York")
EVENINGS = [{"day": d, "start": "17:00", "end": "21:00"} for d in range(5)]
LATE = [{"day": 0, "start": "22:00", "end": "24:00"}, {"day": 1, "start": "00:00", "end": "02:00"}]


def at(day, hour, minute=0, tz=NY):
    return datetime(2030, 3, day, hour, minute, tzinfo=tz)  # 2030-03-04 is a Monday


def test_inside_edges_and_outside():
    assert model.within_availability(EVENINGS, "America/New_York", at(4, 17), at(4, 18))
    assert model.within_availability(EVENINGS, "America/New_York", at(4, 20), at(4, 21))
    assert not model.within_availability(EVENINGS, "America/New_York", at(4, 20, 30), at(4, 21, 30))
    assert not model.within_availability(EVENINGS, "America/New_York", at(6, 1), at(6, 2))
    assert not model.within_availability(EVENINGS, "America/New_York", at(9, 18), at(9, 19))  # Saturday
    assert not model.within_availability([], "America/New_York", at(4, 18), at(4, 19))


def test_other_zone_and_windows_across_midnight():
    chicago = ZoneInfo("America/Chicago")
    # 18:00-19:00 in New York is 17:00-18:00 in Chicago: inside Chicago evenings only from 17:00.
    assert model.within_availability(EVENINGS, "America/Chicago", at(4, 18), at(4, 19))
    assert not model.within_availability(EVENINGS, "America/Chicago", at(4, 16, tz=chicago), at(4, 17, tz=chicago))
    assert model.within_availability(LATE, "America/New_York", at(4, 23), at(5, 1))


def test_the_message_names_who_the_zone_and_the_windows():
    text = model.outside_availability_message("The member m-1", EVENINGS[:1], "America/Chicago", at(6, 1), at(6, 2))
    assert "The member m-1's availability (America/Chicago): Mon 17:00-21:00" in text
    assert "Wed 2030-03-06 00:00-01:00" in text  # shown in the person's zone
    assert "none given" in model.outside_availability_message("The leader l-1", [], "UTC", at(6, 1), at(6, 2))

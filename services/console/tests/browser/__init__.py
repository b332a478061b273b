# A package, so that the platform these browser tests share (scope="package" in conftest.py) stops after the
# last of them instead of idling until the whole suite ends (pytest treats "package" as "session" elsewhere).

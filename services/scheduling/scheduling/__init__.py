"""The scheduling service: Peer-led group meetings, one-on-one sessions, reminders and feeds."""

"""The intake service: Organizations, sites, members, peer leaders, consents, screenings and plans."""

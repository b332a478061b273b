"""The matching service: Pairs each member with the right peer leader, and explains why."""

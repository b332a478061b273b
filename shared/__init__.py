"""Recovery Network's common library: event contracts, Kafka and MongoDB plumbing, the app factory.

Never domain rules: those live in each service's ``model.py``.
"""

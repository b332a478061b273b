"""Running the platform: the local runner (embedded servers), set-up of topics and indexes, and the
container image and gunicorn configuration used by docker-compose."""

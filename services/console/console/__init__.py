"""The staff console: server-rendered pages over the four services' public HTTP APIs (a backend-for-frontend)."""

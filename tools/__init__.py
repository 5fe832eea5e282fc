"""Developer tooling: local services, provisioning and demo seeding. Not deployed."""

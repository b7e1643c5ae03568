"""Management commands of the deployment bundle runtime."""

"""Sample Django project deployed by the bundle."""

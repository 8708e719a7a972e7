from django.apps import AppConfig


class ExampleConfig(AppConfig):
    name = "example"

    def ready(self) -> None:
        from example import security  # noqa: F401  (registers the production checks)

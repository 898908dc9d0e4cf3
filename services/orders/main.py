"""``millrace run orders``: thin entrypoint."""

from __future__ import annotations

from services.orders.app import create_app
from services.orders.settings import OrdersSettings
from shared.http import serve
from shared.logging import configure_logging
from shared.settings import load_settings


def main() -> int:
    settings = load_settings(OrdersSettings)
    configure_logging(settings.service_name, settings.log_level, settings.log_format)
    serve(
        create_app(settings),
        settings.http_host,
        settings.http_port,
        settings.shutdown_grace_s,
        ops_port=settings.ops_port,
    )
    return 0

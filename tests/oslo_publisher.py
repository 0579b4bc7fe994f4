"""Publishes notifications with oslo.messaging's own Notifier, in its own process (oslo.messaging
drags in eventlet, which must not share a process with the tests' event loops).

stdin: JSON {"exchange", "topic", "publisher_id", "items": [[priority, event_type, payload], ...]}
"""

from __future__ import annotations

import json
import sys
import warnings

RABBIT_URL = "rabbit://guest:guest@127.0.0.1:5672/"


def main() -> None:
    warnings.simplefilter("ignore")
    import oslo_messaging
    from oslo_config import cfg
    from oslo_context import context

    job = json.load(sys.stdin)
    # What keystone does in keystone/conf/__init__.py (and each service for its own exchange).
    oslo_messaging.set_transport_defaults(control_exchange=job["exchange"])
    conf = cfg.ConfigOpts()
    conf([], project="stackwatch-test")
    transport = oslo_messaging.get_notification_transport(conf, url=RABBIT_URL)
    try:
        notifier = oslo_messaging.Notifier(
            transport, driver="messagingv2", topics=[job["topic"]], publisher_id=job["publisher_id"]
        )
        ctx = context.RequestContext(
            user_id="u-ctx", project_id="p-ctx", request_id="req-00000000-0000-0000-0000-000000000001"
        )
        for priority, event_type, payload in job["items"]:
            getattr(notifier, priority)(ctx, event_type, payload)
    finally:
        transport.cleanup()


if __name__ == "__main__":
    main()

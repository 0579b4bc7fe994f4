"""Alert delivery: routing, throttling and the sinks (webhook, smtp, syslog, file)."""

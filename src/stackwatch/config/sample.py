"""The commented sample printed by ``stackwatch config sample``. A test loads it (with the
secrets it references set) and checks that every setting of every section, source and sink
appears in it, so the sample is the complete, working reference."""

SAMPLE = """\
# stackwatch serve configuration. Check it with: stackwatch config check FILE
# Secrets are never written here: give them as $env:NAME or $file:/absolute/path.

hostname: monitor1                  # this monitor's name in its own events (default: system host name)
state_dir: /var/lib/stackwatch/state  # saved file offsets, dead-letter file of undeliverable alerts

store:
  url: /var/lib/stackwatch/data     # data folder (embedded SQLite), sqlite:///dir, or postgresql://user@host/db
  password: null                    # PostgreSQL password by reference, e.g. $env:STACKWATCH_DB_PASSWORD
  options: {}                       # backend options, e.g. {batch_size: 20000}

rules:
  builtin: true                     # the built-in packs
  paths: [/etc/stackwatch/rules]    # your own YAML and Sigma rules (files or folders)
  strict: false                     # true: refuse to start when a rule file has a problem

maintenance:                        # rules with outside_maintenance: true are quiet in these windows
  host_groups:
    computes: ["cmp-*"]
  windows:
    - name: weekly patching
      cron: "0 2 * * sat"
      duration: 2h
      hosts: ["@computes"]
      services: ["nova-*"]

expected_sources:                   # watched for silence from the start, even if they never speak
  - {host: ctl1, service: keystone}
  - {host: ctl1, service: nova-api}

sources:
  - type: syslog_udp
    name: syslog-udp
    listen: 0.0.0.0:514
    receive_buffer: 8M              # SO_RCVBUF (raise net.core.rmem_max to match)
    max_message_bytes: 64k          # longer records are truncated and flagged attrs.truncated
    rate_limit: 0                   # records/s (0: unlimited); UDP drops the excess, counted and alerted
    burst: 0                        # records above the rate allowed in a burst (0: one second's worth)
    queue_size: 0                   # 0: limits.queue_size
    host: ""                        # host for records without one (default: the sender's address)
    service: ""                     # service for records without one

  - type: syslog_tcp                # RFC 6587: octet counting or LF framing, detected per frame
    name: syslog-tls
    listen: 0.0.0.0:6514
    tls:                            # RFC 5425; omit for plain TCP
      cert: /etc/stackwatch/tls/server.pem
      key: /etc/stackwatch/tls/server.key
      key_password: null            # by reference, for an encrypted key
      client_ca: /etc/stackwatch/tls/nodes-ca.pem
      require_client_cert: true     # mutual TLS: only our nodes may write
    max_connections: 1024
    idle_timeout: 0                 # close silent connections after this long (0: never)

  - type: relp                      # rsyslog's omrelp: acknowledged only once stored (nothing lost)
    name: relp
    listen: 0.0.0.0:2514
    tls:                            # optional, as above (mutual TLS with client_ca)
      cert: /etc/stackwatch/tls/server.pem
      key: /etc/stackwatch/tls/server.key
      client_ca: /etc/stackwatch/tls/nodes-ca.pem
      require_client_cert: true
    oversize: truncate              # a message over max_message_bytes: truncate (flagged) or close

  - type: tenant_syslog             # tenants' instances: the client certificate's CN is the project id
    name: tenants
    listen: 0.0.0.0:6515
    tls:
      cert: /etc/stackwatch/tls/server.pem
      key: /etc/stackwatch/tls/server.key
      client_ca: /etc/stackwatch/tls/tenants-ca.pem   # a CA of its own, issuing one certificate per project
      require_client_cert: true
    project_rate_limit: 100         # records/s per project: one tenant cannot starve the others
    project_burst: 0
    project_max_connections: 16
    projects: []                    # project ids allowed (empty: any the CA certified)
    max_message_bytes: 8KiB

  - type: file
    name: local-logs
    paths: [/var/log/keystone/keystone.log, /var/log/auth.log]
    start_at: end                   # for files never seen before: end or beginning
    poll_interval: 250ms            # inotify wakes the reader sooner; polling is the safety net
    idle_flush: 500ms               # close a multi-line record (traceback) after this long idle
    host: monitor1

  - type: amqp                      # OpenStack notifications (oslo.messaging messagingv2)
    name: notifications
    url: amqp://stackwatch@rabbit1:5672/   # no password here
    password: $env:STACKWATCH_AMQP_PASSWORD
    exchanges: [keystone, nova, cinder, neutron, glance]
    topics: [notifications]         # bound as notifications.* (every priority)
    exchange_durable: false         # must match the services' amqp_durable_queues
    queue: stackwatch               # private durable queue: never consume notifications.info
    queue_durable: true
    prefetch: 500
    reconnect_interval: 5s

sinks:
  - type: webhook
    name: soc
    url: https://soc.example.org/hooks/stackwatch
    secret: $env:STACKWATCH_WEBHOOK_SECRET   # signs the body: X-Stackwatch-Signature: sha256=<hex>
    headers: {}                     # extra headers (no secrets)
    ca_file: null
    verify_tls: true
    retries: 5                      # then the notification goes to the dead-letter file
    backoff: 1s                     # doubled at each retry ...
    backoff_max: 60s                # ... up to this
    timeout: 10s
    queue_size: 1000

  - type: smtp
    name: mail
    host: smtp.example.org
    port: 587
    starttls: true
    implicit_tls: false
    username: stackwatch
    password: $file:/etc/stackwatch/smtp-password
    ca_file: null
    sender: stackwatch@example.org
    recipients: [secops@example.org]

  - type: syslog                    # to another SIEM
    name: siem
    address: siem.example.org:6514
    transport: tls                  # udp, tcp or tls
    format: cef                     # rfc5424 or cef
    framing: octet                  # octet (RFC 6587/5425) or lf (tcp only)
    facility: local4
    ca_file: /etc/stackwatch/tls/siem-ca.pem
    cert: null                      # client certificate, if the SIEM wants one
    key: null
    hostname: ""

  - type: file
    name: alert-log
    path: /var/log/stackwatch/alerts.jsonl   # "-" for standard output

  - type: alertmanager              # Prometheus Alertmanager, v2 API (POST /api/v2/alerts)
    name: alertmanager
    url: http://alertmanager.example.org:9093
    dashboard_url: https://stackwatch.example.org   # generatorURL: <this>/alerts/<id>
    labels: {team: cloud-ops}       # added to every alert (alertname, rule, severity, host... are set)
    firing_ttl: 24h                 # a firing alert's endsAt, renewed when re-sent; resolved: endsAt = then
    bearer_token: null              # by reference, when Alertmanager sits behind an authenticating proxy
    ca_file: null
    verify_tls: true

  - type: chat                      # Slack-compatible incoming webhook: Slack, Mattermost, Rocket.Chat
    name: chat
    webhook_url: $env:STACKWATCH_CHAT_WEBHOOK   # the URL is a credential: by reference only
    flavor: mattermost              # slack, mattermost or rocketchat
    username: stackwatch            # shown as the poster (Mattermost username, Rocket.Chat alias)
    channel: ""                     # override the webhook's channel, where allowed
    dashboard_url: https://stackwatch.example.org   # links to each alert's page
    ca_file: null
    verify_tls: true

  - type: matrix                    # a Matrix room, through the client-server API
    name: matrix
    homeserver: https://matrix.example.org
    room_id: "!secops:example.org"  # the room's id (not an alias); the bot must have joined it
    access_token: $env:STACKWATCH_MATRIX_TOKEN   # the bot user's token
    dashboard_url: https://stackwatch.example.org
    ca_file: null
    verify_tls: true

routing:                            # without routes every alert goes to every sink
  - name: everything to the SOC
    sinks: [soc, siem, alert-log]
    categories: ["*"]
    min_severity: low
  - name: page on serious identity attacks
    sinks: [mail, alertmanager, chat]
    categories: ["auth.*", "identity.*", "logging.silence"]
    min_severity: high

throttle:
  update_interval: 10m              # re-send a still-firing alert at most this often
  max_per_minute: 60                # per sink

listen:
  metrics: 127.0.0.1:9108           # GET /metrics (bearer token), GET /healthz (open); null: off
  metrics_token: $env:STACKWATCH_METRICS_TOKEN

limits:
  queue_size: 20000                 # per source; full: TCP/file/AMQP pause, UDP drops (counted)
  batch_size: 5000                  # events per store transaction
  commit_interval: 200ms            # longest wait before commit (and alert delivery)
  fair_quantum: 256                 # records from one source before the next one's turn
  tick_interval: 1s                 # wall-clock tick for absence rules
  heartbeat_interval: 5s            # monitor.heartbeat events (service stackwatch)
  input_silence: 5m                 # alert when no source delivers anything (0: off)
  stall_after: 5s                   # pipeline stalled: healthz 503 and a logging.silence alert
  drop_check_interval: 10s
  baselines_interval: 5m            # spike baselines, orphan ledger saved this often (and at stop)
  future_tolerance: 5m              # events stamped later than receipt + this are clamped to receipt
  shutdown_timeout: 15s             # SIGTERM: flush, commit, ack and deliver within this

cluster:                            # serve --role collector|analyzer only (docs/cluster.md)
  name: stackwatch                  # RabbitMQ names: sw.<name>.events, sw.<name>.p000...
  amqp_url: amqp://stackwatch@127.0.0.1:5672/
  password: $env:STACKWATCH_AMQP_PASSWORD
  partitions: 8                     # the most analyzers working at once; same on every member
  buckets: 256                      # routing buckets hashed onto the partitions; same on every member
  member: ""                        # this process in the cluster (default: <hostname>-<role>)
  batch_events: 2000                # events per published batch
  batch_delay: 200ms                # longest an event waits in a collector before publishing
  max_unconfirmed: 20000            # events awaiting the broker's confirm; past it sources pause
  reconnect_interval: 2s

# web: {...}                        # the web UI / API (see its documentation)
# auth:                             # keystone logins for the dashboard and API (docs/keystone.md)
#   keystone: {url: https://keystone.example.net:5000/v3, cache: 30s, security_project: security}
respond:                            # resources orphaned by deleted projects/users/domains (README)
  cloud: null                       # clouds.yaml entry to sweep periodically (null: no sweep in serve)
  sweep_interval: 1h                # how often serve lists owners and resources to catch missed deletions
  countermeasure_interval: 60s      # how often serve runs the countermeasure pass (docs/responses.md)
  instances: report                 # report | terminate
  snapshot: false                   # snapshot an instance before terminating it
  volumes: report                   # report | detach | delete
  floating_ips: report              # report | disassociate | release
  ports: report                     # report | delete
  grace: 24h                        # wait this long after planning before acting
  approval: true                    # actions wait for `stackwatch respond approve`
  owners: [project, domain]         # which deletions lead to actions (user: opt in)
"""

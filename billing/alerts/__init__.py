"""Where an alert is decided and sent: budgets and their forecasts (`budgets`), spend anomalies and latency SLOs
(`anomalies`), exactly-once alerts and their deliveries (`delivery`), and the guard on webhook addresses
(`webhook_guard`)."""

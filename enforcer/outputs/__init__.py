"""What leaves the process, built from outcomes: never a decision of its own.

- :mod:`.records`  an outcome as Kafka records: forwarded, violation, dead letter
- :mod:`.metrics`  counters and snapshots of what the enforcer did (live)
- :mod:`.files`    replay's output files (JSON Lines and the report)
- :mod:`.topics`   replay's outputs written to prefixed topics
- :mod:`.report`   replay's report: aggregation, ``report.json``, the HTML page
"""

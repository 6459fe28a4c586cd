"""Remediation of history (docs/remediate.md): what a sink topic's history still
exposes, judged again under a policy, and the plan of retractions that undoes what
that policy would not have forwarded.

Pure, like ``exposure/``: the sink's records come in from the caller (the command line
reads them with replay's topic reader), the judging is the decision core's ``Step``,
and the plan is a file. Nothing here talks to Kafka.
"""

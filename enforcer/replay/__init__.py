"""The same step over records that are not live: history and a policy's test cases.

- :mod:`.sources`  JSON Lines files and Kafka topics (read_committed, no group) as input
- :mod:`.loop`     every record through :class:`enforcer.core.step.Step`, into outputs
                   and the report
- :mod:`.run`      a replay from a file or a topic, with its outputs and progress bar
- :mod:`.ledger`   a purpose ledger read whole from a file or a topic, for replay and
                   ``explain``
- :mod:`.cases`    ``enforcer policy test``: a policy's test cases through the step
"""

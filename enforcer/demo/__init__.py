"""The demo: sample traffic shaped like the 2019 case, a sample purpose ledger, and the
README's main job that runs a real worker on them (``python -m enforcer.demo``)."""

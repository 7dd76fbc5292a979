"""The soak: logwarden as a whole, under load and faults, with verdicts (``bench/soak.py``).

Modules: ``plan`` (the schedule of incidents and faults), ``workload`` (records, ids, hostile
input), ``ledger`` (what each record became: acknowledged, refused, in doubt), ``load`` (the
sender threads), ``stack`` (the Ray head and ``logwarden up`` the soak starts, and their
processes), ``channels`` (the fake Slack, PagerDuty and SMTP receivers and the config file),
``faults`` (the fault injector), ``verify`` (the verdicts) and ``runner`` (all of it in order).
"""

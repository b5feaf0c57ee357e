"""monitor_drift as plain functions: reference sample -> interval sample -> Evidently report -> policy.

policy.py (pure: what counts, breach, retrain or not and why), report.py (samples, Evidently, HTML),
reference.py (the reference sample per model version), monitor.py (one interval compared and stored),
performance.py (estimated performance, CBPE), decision.py (the trigger decision against the retrain
DAG's state), summary.py (the summary heading each report), errors.py.
"""

"""retrain_model as plain functions: labelled window -> candidate -> champion/challenger check -> decision.

guardrails.py (pure: better_by, prediction checks, segments, every reason not to promote),
windows.py (the training window, its labelled rows, the fair holdout), lifecycle.py (train,
validate, decide, roll back, prune; `retrain` in one process), review.py (the manual approval's
request and record), realized.py (realized performance from late labels), shadow.py (shadow
scoring of the pending candidate), errors.py.
"""

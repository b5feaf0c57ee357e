"""The approval gate's operator: Airflow's ApprovalOperator that also keeps the answer.

On Reject, ApprovalOperator skips its downstream tasks by raising (Airflow 3), so the answer never
becomes its return value. decide_promotion must record a rejection with the reviewer's name and
comment too: this subclass pushes the answer as XCom `review` whatever it is, before that happens.
Light on purpose (the provider module only): DAG files import it at parse time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator

REVIEW_XCOM_KEY = "review"
APPROVE = "Approve"  # the ApprovalOperator option that promotes


def review_answer(review: dict | None) -> dict | None:
    """The XCom `review` as the plain answer decide_promotion takes: approved, reviewer (None when the
    timeout default answered), reviewer_id, comment, responded_at (ISO), timed_out. None: nobody was asked."""
    if review is None:
        return None
    user = review.get("responded_by_user")
    responded_at = review.get("responded_at")
    comment = ((review.get("params_input") or {}).get("comment") or "").strip()
    return {
        "approved": list(review.get("chosen_options") or []) == [APPROVE],
        # No responder: the scheduler applied the default (Reject) when the response timeout passed.
        "timed_out": user is None,
        "reviewer": user["name"] if user else None,
        "reviewer_id": user["id"] if user else None,
        "comment": comment or None,
        "responded_at": responded_at.isoformat() if isinstance(responded_at, datetime) else responded_at,
    }


class RecordedApprovalOperator(ApprovalOperator):
    """ApprovalOperator whose answer (chosen option, comment, responder, time) is XCom `review`,
    on Approve, Reject and the timeout default alike (responder None)."""

    def execute_complete(self, context, event: dict[str, Any]) -> Any:
        try:
            return super().execute_complete(context=context, event=event)
        finally:
            summary = self.hitl_summary_extra  # filled by the base class once the answer validated
            if "chosen_options" in summary:
                context["ti"].xcom_push(
                    key=REVIEW_XCOM_KEY,
                    value={
                        key: summary.get(key)
                        for key in ("chosen_options", "params_input", "responded_at", "responded_by_user")
                    },
                )

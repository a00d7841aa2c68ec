"""Admin review (管理员审核), the embedded default: an administrator compares the request with
what the school knows of the person and approves or rejects it in 实名认证审核."""

from portal.accounts.models import RealNameRequest
from portal.accounts.providers.base import Provider, Session, Verdict


class ReviewProvider(Provider):
    name = "review"
    label = "管理员审核"
    decided_by_admin = True
    # A person waits minutes or hours for a review; asking every 5 s still shows the outcome
    # promptly to someone watching the page.
    poll_seconds = 5

    def start(self, request: RealNameRequest, id_number: str, return_url: str) -> Session | None:
        return None  # the request waits in the review queue; there is nothing to open

    def result(self, request: RealNameRequest, id_number: str) -> Verdict | None:
        return None  # approve() and reject() in the review queue decide

"""What every identity-verification provider offers the real-name service."""

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from portal.accounts.models import RealNameRequest


class ProviderError(RuntimeError):
    """The provider could not be reached or refused the call. The message names the provider's
    error code for the log; it never carries the person's name or ID number."""

    def __init__(self, message: str, code: str = ""):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Session:
    """A verification the provider has opened: its id, and the link the phone opens."""

    id: str
    url: str


@dataclass(frozen=True)
class Verdict:
    """The provider's final answer. `reason` is shown to the person when it is not a pass;
    `evidence` goes into the audit record, so it holds references and scores (the provider's
    request id, its result code, a similarity), never ID numbers or images."""

    passed: bool
    reason: str = ""
    evidence: dict = field(default_factory=dict)


class Provider(ABC):
    """Confirms that the person who typed a name and ID number is that person.

    `start` opens the verification when the request is submitted (nothing to open for an
    administrator's review). `result` is asked while the request is pending and answers None
    until the provider has decided. Providers whose decision an administrator makes
    (`decided_by_admin`) answer None throughout: the review queue concludes their requests.
    """

    name: ClassVar[str]
    label: ClassVar[str]  # what the person is told, e.g. 人脸核验
    decided_by_admin: ClassVar[bool] = False
    poll_seconds: ClassVar[int] = 2  # how often the status partial asks again while pending
    required_config: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Mapping):
        self.config = config

    @classmethod
    def missing_config(cls, config: Mapping) -> list[str]:
        return [key for key in cls.required_config if not config.get(key)]

    @abstractmethod
    def start(self, request: RealNameRequest, id_number: str, return_url: str) -> Session | None:
        """Open the verification; `return_url` is where the phone may be sent when it is done."""

    @abstractmethod
    def result(self, request: RealNameRequest, id_number: str) -> Verdict | None:
        """The provider's decision, or None while it has none."""

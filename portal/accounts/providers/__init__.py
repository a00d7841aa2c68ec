"""Identity-verification providers for real-name authentication, by name.

REAL_NAME_PROVIDER picks the one new requests use: `review` (an administrator confirms the
person, the embedded default) or `face` (Tencent Cloud FaceID). A request keeps the name of the
provider it was started with, so changing the setting never strands a request in progress.
Another provider (Aliyun's cloudauth, say) is a Provider subclass passed to register().
"""

from collections.abc import Mapping

from portal.accounts.providers.base import Provider, ProviderError, Session, Verdict
from portal.accounts.providers.faceid import FaceIdProvider
from portal.accounts.providers.review import ReviewProvider

__all__ = ["Provider", "ProviderError", "Session", "Verdict", "decided_by_admin", "get", "names", "register"]

_REGISTRY: dict[str, type[Provider]] = {}


def register(provider: type[Provider]) -> type[Provider]:
    _REGISTRY[provider.name] = provider
    return provider


def names() -> list[str]:
    return sorted(_REGISTRY)


def decided_by_admin() -> list[str]:
    """The providers whose requests wait in the review queue."""
    return sorted(name for name, provider in _REGISTRY.items() if provider.decided_by_admin)


def get(name: str, config: Mapping) -> Provider:
    """The provider called `name`, configured from `config` (the app's)."""
    try:
        return _REGISTRY[name](config)
    except KeyError:
        raise ProviderError(f"unknown real-name provider {name!r}; known: {', '.join(names())}") from None


register(ReviewProvider)
register(FaceIdProvider)

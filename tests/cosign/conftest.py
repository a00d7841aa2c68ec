"""Fixtures for the cosign app's tests: the school CA, a verified person (and another), an
activated phone, and a signing task whose signer is the person."""

import pytest
from cosign_phone import activated_phone, make_person, make_task

from portal.certificates import services as ca


@pytest.fixture
def school_ca(app):
    ca.init_ca()


@pytest.fixture
def person(school_ca):
    return make_person("zhangwei", "张伟")


@pytest.fixture
def other(school_ca):
    return make_person("liuyang", "刘洋")


@pytest.fixture
def phone(person):
    """A person whose phone holds an activated certificate."""
    return activated_phone(person)


@pytest.fixture
def participant(person):
    return make_task(person, person)

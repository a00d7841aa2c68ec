"""张伟, verified, with his seals, a three-page task and a phone: what the signing tests start from."""

import pytest
from cosign_phone import activated_phone
from helpers import three_page_pdf

from portal.accounts.models import Organization, RealNameStatus, User
from portal.seals.models import Seal, SealGrant
from portal.seals.services import create_personal_seal
from portal.signing import single


@pytest.fixture
def person(demo):
    user = User.get(User.username == "zhangwei")
    user.real_name_status = RealNameStatus.VERIFIED
    user.save()
    return user


@pytest.fixture
def personal_seal(person):
    return create_personal_seal(person)


@pytest.fixture
def department_seal(person):
    """教务处's official seal, granted to the person."""
    seal = Seal.get(Seal.owner_org == Organization.get(Organization.short_code == "jwc"))
    SealGrant.create(seal=seal, user=person, granted_by=User.get(User.username == "zhouming"))
    return seal


@pytest.fixture
def phone(person):
    """His cosign app, with a certificate."""
    return activated_phone(person)


@pytest.fixture
def task(person):
    return single.start_task(person, [("合同.pdf", three_page_pdf())])


@pytest.fixture
def document(task):
    return single.task_documents(task)[0]

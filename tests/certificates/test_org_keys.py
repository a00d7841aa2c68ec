"""Organisation keys: one wrapped SM2 key and an "org" certificate per internal unit, the
school's USCC in their subjects, loading a key to sign; and the USCC check itself."""

import pytest

from portal.accounts.models import Organization
from portal.audit import verify_chain
from portal.audit.models import Event
from portal.certificates import keystore, services, uscc
from portal.certificates.models import CertificateAuthority, OrgKey
from portal.crypto import x509

pytestmark = pytest.mark.both_databases


def internal_orgs():
    return list(Organization.select().where(Organization.is_internal == True).order_by(Organization.id))  # noqa: E712


def test_every_demo_organisation_has_an_org_certificate_after_seeding(demo):
    school = Organization.get(kind="school")
    assert school.uscc == demo.SCHOOL_USCC and uscc.is_valid(school.uscc)
    issuing_key = x509.certificate_public_key(bytes(CertificateAuthority.get(name="issuing").certificate.der))
    orgs = internal_orgs()
    assert len(orgs) == 6
    for org in orgs:
        cert = services.org_certificate(org)
        der = bytes(cert.der)
        assert cert.kind == "org" and cert.organization_id == org.id and cert.status == "valid"
        assert x509.verify_certificate(der, issuing_key)
        assert x509.certificate_key_usage(der) == {"digital_signature", "non_repudiation"}
        names = x509.name_attributes(x509.load_certificate(der).subject)
        assert names["common_name"] == org.name and names["organization_name"] == "示范大学"
        assert names["organization_identifier"] == "NTRCN-" + demo.SCHOOL_USCC
        assert uscc.from_organization_identifier(names["organization_identifier"]) == demo.SCHOOL_USCC
        if org.id == school.id:
            assert "organizational_unit_name" not in names
        else:
            assert names["organizational_unit_name"] == org.name
    assert (
        cert.subject_dn
        == f"organizationIdentifier=NTRCN-{demo.SCHOOL_USCC},CN=校长办公室,OU=校长办公室,O=示范大学,C=CN"
    )
    assert verify_chain()[1] == []


def test_seeding_without_a_ca_sets_one_up_and_seeding_again_changes_nothing(demo):
    assert CertificateAuthority.select().count() == 2
    keys = [(k.organization_id, bytes(k.wrapped_key)) for k in OrgKey.select().order_by(OrgKey.id)]
    assert demo.seed() == 0
    assert services.issue_org_keys() == []
    assert keys == [(k.organization_id, bytes(k.wrapped_key)) for k in OrgKey.select().order_by(OrgKey.id)]


def test_issue_org_keys_needs_the_ca(app):
    Organization.create(name="测试大学", kind="school")
    with pytest.raises(services.CANotInitialised):
        services.issue_org_keys()
    assert OrgKey.select().count() == 0


def test_an_org_key_is_stored_wrapped_and_loads_to_sign(demo):
    org = Organization.get(short_code="jwc")
    org_key = services.current_org_key(org)
    key = services.load_org_key(org)
    assert key.public_key.hex() == org_key.certificate.public_key
    assert key.to_bytes() not in bytes(org_key.wrapped_key)
    assert keystore.unwrap(org_key.wrapped_key, "org-key") == key.to_bytes()
    signature = key.sign(b"document digest")
    assert x509.certificate_public_key(bytes(org_key.certificate.der)).verify(b"document digest", signature)
    event = Event.get((Event.action == "org_key.created") & (Event.subject == f"organization:{org.public_id}"))
    assert event.data["serial"] == org_key.certificate.serial


def test_a_revoked_org_key_is_replaced_by_the_next_issue(demo):
    org = Organization.get(short_code="cwc")
    old = services.current_org_key(org)
    services.revoke(old.certificate, "keyCompromise", None)
    assert services.current_org_key(org) is None
    with pytest.raises(services.CertificateError):
        services.load_org_key(org)
    created = services.issue_org_keys()
    assert [k.organization_id for k in created] == [org.id]
    new = services.current_org_key(org)
    assert new.id != old.id and new.certificate.public_key != old.certificate.public_key
    assert services.load_org_key(org).public_key.hex() == new.certificate.public_key


def test_an_invalid_uscc_is_never_written_into_a_certificate(app):
    services.init_ca()
    Organization.create(name="测试大学", kind="school", uscc="12110108MB0000000J")
    with pytest.raises(services.CertificateError, match="统一社会信用代码"):
        services.issue_org_keys()
    assert OrgKey.select().count() == 0


def test_the_orgs_cli_issues_keys_once(app):
    runner = app.test_cli_runner()
    Organization.create(name="测试大学", kind="school")
    refused = runner.invoke(args=["orgs", "issue-keys"])
    assert refused.exit_code != 0 and "ca init" in refused.output
    runner.invoke(args=["ca", "init"])
    first = runner.invoke(args=["orgs", "issue-keys"])
    assert first.exit_code == 0 and "1 organisation key(s) issued" in first.output and "CN=测试大学" in first.output
    second = runner.invoke(args=["orgs", "issue-keys"])
    assert second.exit_code == 0 and "already has a key" in second.output


# ---------------------------------------------------------------------------------------------
# USCC (pure)


@pytest.mark.parametrize(
    "code",
    ["12100000400002259P", "12100000400000624D", "91350100M000100Y43", "91440300708461136T", "12110108MB0000000H"],
)
def test_published_codes_pass_the_gb_32100_check(code):
    assert uscc.is_valid(code)
    assert uscc.check_digit(code[:17]) == code[17]


def test_every_single_character_error_and_neighbour_swap_is_caught():
    code = "91350100M000100Y43"
    for i in range(18):
        for c in uscc.ALPHABET:
            if c != code[i]:
                assert not uscc.is_valid(code[:i] + c + code[i + 1 :])
    for i in range(17):
        if code[i] != code[i + 1]:
            assert not uscc.is_valid(code[:i] + code[i + 1] + code[i] + code[i + 2 :])


def test_codes_are_normalised_and_malformed_ones_refused():
    assert uscc.normalize(" 91350100m000100y43 ") == "91350100M000100Y43"
    for bad in ["", "91350100M000100Y4", "91350100M000100Y433", "91350100I000100Y43", "91350100M000100y43"]:
        assert not uscc.is_valid(bad)
    with pytest.raises(ValueError):
        uscc.check_digit("12345")
    with pytest.raises(ValueError):
        uscc.organization_identifier("91350100M000100Y44")
    assert uscc.from_organization_identifier("NTRCN-91350100M000100Y43") == "91350100M000100Y43"
    assert uscc.from_organization_identifier("VATDE-123456789") is None

"""001_initial: the whole domain model (DESIGN.md §3), generated from the models by
`flask db create initial`. Never import live models here: they drift.
"""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    @migrator.create_model
    class AuditHead(pw.Model):
        id = pw.AutoField()
        seq = pw.IntegerField(default=0)
        hash = pw.CharField(max_length=64)

        class Meta:
            table_name = "audit_head"

    @migrator.create_model
    class Blob(pw.Model):
        id = pw.AutoField()
        key = pw.CharField(max_length=64, unique=True)
        size = pw.IntegerField()
        media_type = pw.CharField(default='application/octet-stream', max_length=128)
        created_at = pw.DateTimeField()

        class Meta:
            table_name = "blob"

    @migrator.create_model
    class User(pw.Model):
        id = pw.AutoField()
        public_id = pw.CharField(max_length=24, unique=True)
        username = pw.CharField(max_length=64, null=True, unique=True)
        password_hash = pw.CharField(max_length=255, null=True)
        name = pw.CharField(max_length=64)
        mobile = pw.CharField(max_length=20, null=True)
        id_number_enc = pw.BlobField(null=True)
        id_number_masked = pw.CharField(max_length=24, null=True)
        wxwork_userid = pw.CharField(max_length=64, null=True, unique=True)
        sso_uid = pw.CharField(max_length=64, null=True, unique=True)
        real_name_status = pw.CharField(default='unverified', max_length=16)
        is_external = pw.BooleanField(default=False)
        roles = pw.CharField(default='', max_length=255)
        is_active = pw.BooleanField(default=True)
        is_demo = pw.BooleanField(default=False)
        created_at = pw.DateTimeField()
        last_login_at = pw.DateTimeField(null=True)

        class Meta:
            table_name = "user"

    @migrator.create_model
    class Organization(pw.Model):
        id = pw.AutoField()
        public_id = pw.CharField(max_length=24, unique=True)
        name = pw.CharField(max_length=128)
        short_code = pw.CharField(max_length=32, null=True, unique=True)
        kind = pw.CharField(max_length=16)
        parent = pw.ForeignKeyField(column_name='parent_id', field='id', model='self', null=True, on_delete='RESTRICT')
        uscc = pw.CharField(max_length=18, null=True)
        is_internal = pw.BooleanField(default=True)
        created_at = pw.DateTimeField()

        class Meta:
            table_name = "organization"

    @migrator.create_model
    class Task(pw.Model):
        id = pw.AutoField()
        public_id = pw.CharField(max_length=24, unique=True)
        kind = pw.CharField(max_length=16)
        title = pw.CharField(max_length=255)
        business_type = pw.CharField(default='', max_length=64)
        initiator = pw.ForeignKeyField(column_name='initiator_id', field='id', model=migrator.orm['user'], on_delete='RESTRICT')
        initiator_org = pw.ForeignKeyField(column_name='initiator_org_id', field='id', model=migrator.orm['organization'], null=True, on_delete='RESTRICT')
        status = pw.CharField(default='draft', index=True, max_length=16)
        void_reason = pw.CharField(max_length=16, null=True)
        void_note = pw.TextField(default='')
        ordered = pw.BooleanField(default=True)
        allow_refuse = pw.BooleanField(default=False)
        deadline = pw.DateTimeField(null=True)
        note = pw.TextField(default='')
        created_at = pw.DateTimeField(index=True)
        updated_at = pw.DateTimeField()
        completed_at = pw.DateTimeField(null=True)

        class Meta:
            table_name = "task"

    @migrator.create_model
    class CC(pw.Model):
        id = pw.AutoField()
        task = pw.ForeignKeyField(column_name='task_id', field='id', model=migrator.orm['task'], on_delete='CASCADE')
        user = pw.ForeignKeyField(column_name='user_id', field='id', model=migrator.orm['user'], null=True, on_delete='RESTRICT')
        name = pw.CharField(max_length=64)
        mobile = pw.CharField(max_length=20, null=True)
        created_at = pw.DateTimeField()

        class Meta:
            table_name = "cc"

    @migrator.create_model
    class Certificate(pw.Model):
        id = pw.AutoField()
        public_id = pw.CharField(max_length=24, unique=True)
        kind = pw.CharField(max_length=16)
        user = pw.ForeignKeyField(column_name='user_id', field='id', model=migrator.orm['user'], null=True, on_delete='RESTRICT')
        organization = pw.ForeignKeyField(column_name='organization_id', field='id', model=migrator.orm['organization'], null=True, on_delete='RESTRICT')
        issuer = pw.ForeignKeyField(column_name='issuer_id', field='id', model='self', null=True, on_delete='RESTRICT')
        serial = pw.CharField(max_length=64, unique=True)
        subject_dn = pw.TextField()
        public_key = pw.CharField(index=True, max_length=130)
        der = pw.BlobField()
        not_before = pw.DateTimeField()
        not_after = pw.DateTimeField()
        status = pw.CharField(default='valid', max_length=16)
        revoked_at = pw.DateTimeField(null=True)
        revocation_reason = pw.CharField(max_length=32, null=True)
        created_at = pw.DateTimeField()

        class Meta:
            table_name = "certificate"

    @migrator.create_model
    class CertificateAuthority(pw.Model):
        id = pw.AutoField()
        name = pw.CharField(max_length=16, unique=True)
        certificate = pw.ForeignKeyField(column_name='certificate_id', field='id', model=migrator.orm['certificate'], on_delete='RESTRICT')
        wrapped_key = pw.BlobField()
        crl_number = pw.IntegerField(default=0)
        crl_blob = pw.CharField(max_length=64, null=True)
        crl_updated_at = pw.DateTimeField(null=True)
        created_at = pw.DateTimeField()

        class Meta:
            table_name = "certificate_authority"

    @migrator.create_model
    class KeyShare(pw.Model):
        id = pw.AutoField()
        public_id = pw.CharField(max_length=24, unique=True)
        user = pw.ForeignKeyField(column_name='user_id', field='id', model=migrator.orm['user'], on_delete='RESTRICT')
        public_key = pw.CharField(max_length=130)
        certificate = pw.ForeignKeyField(column_name='certificate_id', field='id', model=migrator.orm['certificate'], null=True, on_delete='RESTRICT', unique=True)
        wrapped_share = pw.BlobField()
        wrapped_device_secret = pw.BlobField(null=True)
        pin_verifier = pw.BlobField(null=True)
        failed_attempts = pw.IntegerField(default=0)
        locked_at = pw.DateTimeField(null=True)
        auto_sign_minutes = pw.IntegerField(default=0)
        last_confirmed_at = pw.DateTimeField(null=True)
        created_at = pw.DateTimeField()

        class Meta:
            table_name = "key_share"

    @migrator.create_model
    class CosignSession(pw.Model):
        id = pw.AutoField()
        token = pw.CharField(max_length=64, unique=True)
        purpose = pw.CharField(max_length=16)
        user = pw.ForeignKeyField(column_name='user_id', field='id', model=migrator.orm['user'], on_delete='CASCADE')
        key_share = pw.ForeignKeyField(column_name='key_share_id', field='id', model=migrator.orm['key_share'], null=True, on_delete='CASCADE')
        digest = pw.CharField(max_length=64, null=True)
        q1 = pw.CharField(max_length=130, null=True)
        status = pw.CharField(default='open', max_length=16)
        signature = pw.CharField(max_length=200, null=True)
        context = pw.TextField()
        created_at = pw.DateTimeField()
        expires_at = pw.DateTimeField()
        completed_at = pw.DateTimeField(null=True)

        class Meta:
            table_name = "cosign_session"
            indexes = [(('key_share', 'q1'), True)]

    @migrator.create_model
    class Document(pw.Model):
        id = pw.AutoField()
        public_id = pw.CharField(max_length=24, unique=True)
        task = pw.ForeignKeyField(column_name='task_id', field='id', model=migrator.orm['task'], on_delete='CASCADE')
        name = pw.CharField(max_length=255)
        original_blob = pw.CharField(max_length=64)
        current_blob = pw.CharField(max_length=64, null=True)
        revision = pw.IntegerField(default=0)
        page_count = pw.IntegerField(default=0)
        page_sizes = pw.TextField()
        conversion_state = pw.CharField(default='none', max_length=16)
        conversion_error = pw.TextField(default='')
        created_at = pw.DateTimeField()

        class Meta:
            table_name = "document"

    @migrator.create_model
    class Event(pw.Model):
        id = pw.AutoField()
        seq = pw.IntegerField(unique=True)
        created_at = pw.DateTimeField()
        actor = pw.ForeignKeyField(column_name='actor_id', field='id', model=migrator.orm['user'], null=True, on_delete='RESTRICT')
        actor_public_id = pw.CharField(max_length=24, null=True)
        actor_name = pw.CharField(default='', max_length=64)
        action = pw.CharField(max_length=64)
        subject = pw.CharField(index=True, max_length=96)
        data = pw.TextField()
        ip = pw.CharField(max_length=64, null=True)
        prev_hash = pw.CharField(max_length=64)
        hash = pw.CharField(max_length=64, unique=True)

        class Meta:
            table_name = "event"

    @migrator.create_model
    class Seal(pw.Model):
        id = pw.AutoField()
        public_id = pw.CharField(max_length=24, unique=True)
        owner_user = pw.ForeignKeyField(column_name='owner_user_id', field='id', model=migrator.orm['user'], null=True, on_delete='RESTRICT')
        owner_org = pw.ForeignKeyField(column_name='owner_org_id', field='id', model=migrator.orm['organization'], null=True, on_delete='RESTRICT')
        kind = pw.CharField(max_length=24)
        name = pw.CharField(max_length=128)
        image_blob = pw.CharField(max_length=64)
        width_mm = pw.FloatField()
        height_mm = pw.FloatField()
        status = pw.CharField(default='active', max_length=16)
        is_default = pw.BooleanField(default=False)
        created_at = pw.DateTimeField()

        class Meta:
            table_name = "seal"

    @migrator.create_model
    class GrantRequest(pw.Model):
        id = pw.AutoField()
        public_id = pw.CharField(max_length=24, unique=True)
        seal = pw.ForeignKeyField(column_name='seal_id', field='id', model=migrator.orm['seal'], on_delete='CASCADE')
        applicant = pw.ForeignKeyField(column_name='applicant_id', field='id', model=migrator.orm['user'], on_delete='CASCADE')
        replaces = pw.ForeignKeyField(column_name='replaces_id', field='id', model=migrator.orm['user'], null=True, on_delete='SET NULL')
        reason = pw.TextField(default='')
        status = pw.CharField(default='pending', max_length=16)
        decided_by = pw.ForeignKeyField(column_name='decided_by_id', field='id', model=migrator.orm['user'], null=True, on_delete='SET NULL')
        decided_at = pw.DateTimeField(null=True)
        decision_note = pw.TextField(default='')
        created_at = pw.DateTimeField()

        class Meta:
            table_name = "grant_request"

    @migrator.create_model
    class JobFailure(pw.Model):
        id = pw.AutoField()
        job_id = pw.CharField(index=True, max_length=128)
        name = pw.CharField(max_length=128)
        args = pw.TextField()
        subject = pw.CharField(index=True, max_length=96, null=True)
        error = pw.TextField()
        traceback = pw.TextField()
        created_at = pw.DateTimeField()

        class Meta:
            table_name = "job_failure"

    @migrator.create_model
    class Membership(pw.Model):
        id = pw.AutoField()
        user = pw.ForeignKeyField(column_name='user_id', field='id', model=migrator.orm['user'], on_delete='CASCADE')
        organization = pw.ForeignKeyField(column_name='organization_id', field='id', model=migrator.orm['organization'], on_delete='CASCADE')
        position = pw.CharField(default='', max_length=32)
        is_leader = pw.BooleanField(default=False)

        class Meta:
            table_name = "membership"
            indexes = [(('user', 'organization'), True)]

    @migrator.create_model
    class OrgKey(pw.Model):
        id = pw.AutoField()
        organization = pw.ForeignKeyField(column_name='organization_id', field='id', model=migrator.orm['organization'], on_delete='RESTRICT')
        certificate = pw.ForeignKeyField(column_name='certificate_id', field='id', model=migrator.orm['certificate'], on_delete='RESTRICT', unique=True)
        wrapped_key = pw.BlobField()
        created_at = pw.DateTimeField()

        class Meta:
            table_name = "org_key"

    @migrator.create_model
    class Outbox(pw.Model):
        id = pw.AutoField()
        channel = pw.CharField(max_length=16)
        recipient = pw.CharField(max_length=128)
        template = pw.CharField(max_length=64)
        payload = pw.TextField()
        status = pw.CharField(default='pending', index=True, max_length=16)
        attempts = pw.IntegerField(default=0)
        error = pw.TextField(default='')
        created_at = pw.DateTimeField()
        sent_at = pw.DateTimeField(null=True)

        class Meta:
            table_name = "outbox"

    @migrator.create_model
    class Participant(pw.Model):
        id = pw.AutoField()
        public_id = pw.CharField(max_length=24, unique=True)
        task = pw.ForeignKeyField(column_name='task_id', field='id', model=migrator.orm['task'], on_delete='CASCADE')
        position = pw.IntegerField(default=0)
        party_kind = pw.CharField(default='person', max_length=16)
        user = pw.ForeignKeyField(column_name='user_id', field='id', model=migrator.orm['user'], null=True, on_delete='RESTRICT')
        organization = pw.ForeignKeyField(column_name='organization_id', field='id', model=migrator.orm['organization'], null=True, on_delete='RESTRICT')
        external_name = pw.CharField(max_length=64, null=True)
        external_mobile = pw.CharField(max_length=20, null=True)
        external_id_number_enc = pw.BlobField(null=True)
        status = pw.CharField(default='waiting', index=True, max_length=16)
        required_seal_kind = pw.CharField(max_length=24, null=True)
        refuse_reason = pw.TextField(default='')
        signed_at = pw.DateTimeField(null=True)
        created_at = pw.DateTimeField()

        class Meta:
            table_name = "participant"

    @migrator.create_model
    class Placement(pw.Model):
        id = pw.AutoField()
        public_id = pw.CharField(max_length=24, unique=True)
        document = pw.ForeignKeyField(column_name='document_id', field='id', model=migrator.orm['document'], on_delete='CASCADE')
        participant = pw.ForeignKeyField(column_name='participant_id', field='id', model=migrator.orm['participant'], null=True, on_delete='CASCADE')
        seal = pw.ForeignKeyField(column_name='seal_id', field='id', model=migrator.orm['seal'], null=True, on_delete='RESTRICT')
        required_seal_kind = pw.CharField(max_length=24, null=True)
        kind = pw.CharField(default='single', max_length=16)
        page = pw.IntegerField(null=True)
        page_range = pw.CharField(max_length=255, null=True)
        x = pw.FloatField()
        y = pw.FloatField()
        width = pw.FloatField()
        height = pw.FloatField()
        riding_rule = pw.CharField(max_length=16, null=True)
        edge = pw.CharField(max_length=8, null=True)
        status = pw.CharField(default='planned', max_length=16)
        created_at = pw.DateTimeField()

        class Meta:
            table_name = "placement"

    @migrator.create_model
    class SealGrant(pw.Model):
        id = pw.AutoField()
        seal = pw.ForeignKeyField(column_name='seal_id', field='id', model=migrator.orm['seal'], on_delete='CASCADE')
        user = pw.ForeignKeyField(column_name='user_id', field='id', model=migrator.orm['user'], on_delete='CASCADE')
        granted_by = pw.ForeignKeyField(column_name='granted_by_id', field='id', model=migrator.orm['user'], null=True, on_delete='SET NULL')
        status = pw.CharField(default='active', max_length=16)
        created_at = pw.DateTimeField()
        revoked_at = pw.DateTimeField(null=True)
        revoked_by = pw.ForeignKeyField(column_name='revoked_by_id', field='id', model=migrator.orm['user'], null=True, on_delete='SET NULL')

        class Meta:
            table_name = "seal_grant"

    @migrator.create_model
    class SignRequest(pw.Model):
        id = pw.AutoField()
        token = pw.CharField(max_length=64, unique=True)
        participant = pw.ForeignKeyField(column_name='participant_id', field='id', model=migrator.orm['participant'], on_delete='CASCADE')
        user = pw.ForeignKeyField(column_name='user_id', field='id', model=migrator.orm['user'], on_delete='CASCADE')
        digests = pw.TextField()
        status = pw.CharField(default='pending', index=True, max_length=16)
        error = pw.TextField(default='')
        expires_at = pw.DateTimeField()
        created_at = pw.DateTimeField()
        completed_at = pw.DateTimeField(null=True)

        class Meta:
            table_name = "sign_request"

    @migrator.create_model
    class TrustAnchor(pw.Model):
        id = pw.AutoField()
        public_id = pw.CharField(max_length=24, unique=True)
        name = pw.CharField(max_length=255)
        der = pw.BlobField()
        fingerprint = pw.CharField(max_length=64, unique=True)
        imported_by = pw.ForeignKeyField(column_name='imported_by_id', field='id', model=migrator.orm['user'], null=True, on_delete='SET NULL')
        created_at = pw.DateTimeField()

        class Meta:
            table_name = "trust_anchor"


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_model('trust_anchor')

    migrator.remove_model('sign_request')

    migrator.remove_model('seal_grant')

    migrator.remove_model('placement')

    migrator.remove_model('participant')

    migrator.remove_model('outbox')

    migrator.remove_model('org_key')

    migrator.remove_model('membership')

    migrator.remove_model('job_failure')

    migrator.remove_model('grant_request')

    migrator.remove_model('seal')

    migrator.remove_model('event')

    migrator.remove_model('document')

    migrator.remove_model('cosign_session')

    migrator.remove_model('key_share')

    migrator.remove_model('certificate_authority')

    migrator.remove_model('certificate')

    migrator.remove_model('cc')

    migrator.remove_model('task')

    migrator.remove_model('organization')

    migrator.remove_model('user')

    migrator.remove_model('blob')

    migrator.remove_model('audit_head')

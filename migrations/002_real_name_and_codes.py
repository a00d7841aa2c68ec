"""002: real-name requests and one-time codes (activation, handwriting pad), for issue #5.
Written by hand from `flask db create` (its index diff is noisy). Never import live models here: they drift.
"""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    @migrator.create_model
    class OneTimeCode(pw.Model):
        id = pw.AutoField()
        code = pw.CharField(max_length=64, unique=True)
        purpose = pw.CharField(max_length=16)
        user = pw.ForeignKeyField(column_name='user_id', field='id', model=migrator.orm['user'], on_delete='CASCADE')
        expires_at = pw.DateTimeField()
        used_at = pw.DateTimeField(null=True)
        created_at = pw.DateTimeField()

        class Meta:
            table_name = "one_time_code"

    @migrator.create_model
    class RealNameRequest(pw.Model):
        id = pw.AutoField()
        public_id = pw.CharField(max_length=24, unique=True)
        user = pw.ForeignKeyField(column_name='user_id', field='id', model=migrator.orm['user'], on_delete='CASCADE')
        name = pw.CharField(max_length=64)
        id_number_enc = pw.BlobField()
        id_number_masked = pw.CharField(max_length=24)
        mobile = pw.CharField(max_length=20)
        provider = pw.CharField(max_length=16)
        status = pw.CharField(default='pending', index=True, max_length=16)
        provider_session = pw.CharField(max_length=128, null=True)
        provider_url = pw.CharField(max_length=1024, null=True)
        reason = pw.CharField(default='', max_length=255)
        decided_by = pw.ForeignKeyField(column_name='decided_by_id', field='id', model=migrator.orm['user'], null=True, on_delete='SET NULL')
        decided_at = pw.DateTimeField(null=True)
        created_at = pw.DateTimeField()

        class Meta:
            table_name = "real_name_request"


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_model('one_time_code')
    migrator.remove_model('real_name_request')

"""003: cached page previews of the signing board, for issue #6.
Written by hand from `flask db create`. Never import live models here: they drift.
"""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    @migrator.create_model
    class PagePreview(pw.Model):
        id = pw.AutoField()
        pdf_blob = pw.CharField(max_length=64)
        page = pw.IntegerField()
        width = pw.IntegerField()
        image_blob = pw.CharField(max_length=64)
        created_at = pw.DateTimeField()

        class Meta:
            table_name = "page_preview"
            indexes = [(("pdf_blob", "page", "width"), True)]


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    migrator.remove_model('page_preview')

from django.contrib import admin

from bundle_sample.moderation.models import Report


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = ("title", "status", "severity", "created_at")
    list_filter = ("status", "severity")

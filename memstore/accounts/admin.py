from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from .models import ApiToken, Membership, Namespace, SigningKey, User

admin.site.register(User, UserAdmin)
admin.site.register(Namespace)
admin.site.register(Membership)
admin.site.register(SigningKey)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("prefix", "user", "name", "created_at", "revoked_at")
    readonly_fields = ("digest", "prefix")

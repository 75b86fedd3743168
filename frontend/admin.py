from django.contrib import admin

from .models import FeaturedPack


@admin.register(FeaturedPack)
class FeaturedPackAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("pack", "position", "blurb")
    raw_id_fields = ("pack",)

"""``manage.py memstore_createuser NAME``: an account with its personal namespace."""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from memstore.accounts.services import api_token_create, user_create


class Command(BaseCommand):
    help = "Create a user (and the namespace of the same name); optionally print an API token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--password", help="prompted when omitted")
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--token", action="store_true", help="also create and print an API token"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        password = options["password"] or getpass.getpass("Password: ")
        user = user_create(username=options["username"], password=password, email=options["email"])
        self.stdout.write(f"created user {user.username} with namespace {user.username}")
        if options["token"]:
            _, raw = api_token_create(user=user, name="created by memstore_createuser")
            self.stdout.write(f"token: {raw}")

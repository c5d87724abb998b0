"""Load the demo: an operator, a customer with an organization and $500 of prepaid credit,
a few catalog products, and a small fleet (two sites of GPU servers, switches and cables).
Safe to run again: it updates what exists rather than duplicating it."""

import os
from decimal import Decimal

from django.core.management.base import BaseCommand

from billing.selectors import credit_grant_list
from billing.services.credits import credit_grant
from catalog.models import Product
from catalog.services.products import product_upsert
from fabric.testbed.fleet import fleet_exists, fleet_generate
from portal.models import User
from portal.services.accounts import user_create
from portal.services.audit import Actor

DEMO_PRODUCTS = [
    (
        "bare-metal",
        "Bare-metal GPU servers",
        Product.Kind.BARE_METAL,
        "Whole GPU servers on your own network, powered on for you, billed by the second.",
    ),
    (
        "jupyter-notebook",
        "Jupyter notebook",
        Product.Kind.NOTEBOOK,
        "JupyterLab on a GPU in seconds; stop it and pay nothing.",
    ),
    (
        "ray-cluster",
        "Ray cluster",
        Product.Kind.RAY,
        "A head and GPU workers wired together, ready for ray.init().",
    ),
    (
        "llm-inference",
        "LLM inference",
        Product.Kind.INFERENCE,
        "An OpenAI-compatible endpoint sold per million tokens.",
    ),
    (
        "fine-tuning",
        "Zero-code fine-tuning",
        Product.Kind.FINE_TUNING,
        "Upload a dataset, get a LoRA adapter served next to the base model.",
    ),
]


class Command(BaseCommand):
    help = "Create the demo logins and catalog (idempotent)."

    def handle(self, *args, **options):
        password = os.environ.get("DEMO_PASSWORD", "storefront-demo")
        demo_users = [
            ("operator", "operator@example.com", None, True),
            ("customer", "customer@example.com", "Acme AI", False),
        ]
        for username, email, organization, operator in demo_users:
            if not User.objects.filter(username=username).exists():
                user_create(
                    username=username,
                    email=email,
                    password=password,
                    organization_name=organization,
                    is_staff=operator,
                    is_superuser=operator,
                    email_verified=True,
                )
        customer = User.objects.get(username="customer")
        acme = customer.memberships.get().organization
        if not credit_grant_list(organization=acme).exists():
            credit_grant(
                organization=acme,
                amount=Decimal("500.00"),
                expires_at=None,
                note="Demo credit",
                actor=Actor(user=User.objects.get(username="operator"), via="admin"),
            )
        if not fleet_exists():
            counts = fleet_generate(
                sites=2,
                nodes_per_site=int(os.environ.get("DEMO_NODES_PER_SITE", "24")),
                actor=Actor.system("task"),
            )
            self.stdout.write(f"demo fleet: {counts['Node']} nodes, {counts['GPU']} GPUs")
        for position, (slug, name, kind, summary) in enumerate(DEMO_PRODUCTS):
            product_upsert(slug=slug, name=name, kind=kind, summary=summary, position=position)
        self.stdout.write(self.style.SUCCESS("demo loaded: logins operator and customer"))

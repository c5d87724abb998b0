from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A person. Tenancy lives on Organization; a user reaches it through Membership."""

    email = models.EmailField("email address", unique=True)

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"

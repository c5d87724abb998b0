from django.db import models


class Product(models.Model):
    """A thing on the menu, from raw GPU servers to ready-made services. SKUs and prices come
    with the orders and billing work; a product only says what it is and how it is fulfilled."""

    class Kind(models.TextChoices):
        BARE_METAL = "bare_metal", "Bare-metal GPU servers"
        NOTEBOOK = "notebook", "Jupyter notebook"
        RAY = "ray", "Ray cluster"
        KUBEFLOW = "kubeflow", "Kubeflow"
        INFERENCE = "inference", "LLM inference (per token)"
        FINE_TUNING = "fine_tuning", "Zero-code fine-tuning"

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    summary = models.CharField(max_length=300)
    is_active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name

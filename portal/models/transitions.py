from django.db import models


class TransitionEvent(models.Model):
    """One state transition of an object: who or what moved it, from where to where, and when.
    `portal.states.transition` writes these rows. A lifecycle's event model adds the foreign key
    to its object, named after the object's model (`order`, `node`), and declares `from_state`
    and `to_state` again with its states as choices."""

    from_state = models.CharField(max_length=16, blank=True)
    to_state = models.CharField(max_length=16)
    actor = models.CharField(max_length=120)
    detail = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        owner = next(field for field in self._meta.fields if field.many_to_one)
        moved = f"{self.from_state or '-'} -> {self.to_state}"
        return f"{owner.name} {getattr(self, owner.attname)}: {moved}"

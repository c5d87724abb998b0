from django.apps import AppConfig


class CoursesConfig(AppConfig):
    name = "courses"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from catalog.offerings import notebook
        from courses import rules

        # Every start of a course notebook — from the portal or JupyterHub's own UI — passes
        # the course's rules; its idle timeout is the course's.
        notebook.admission_checks.append(rules.order_refusal)
        notebook.idle_limits.append(rules.order_idle_minutes)

# The node agent's endpoints (filled by the agent work).
urlpatterns: list = []

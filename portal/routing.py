from django.urls import path

from catalog.consumers import OrderProgressConsumer
from portal.consumers import JobProgressConsumer

websocket_urlpatterns = [
    path("ws/jobs/<int:job_id>/", JobProgressConsumer.as_asgi()),
    path("ws/orders/<int:order_id>/", OrderProgressConsumer.as_asgi()),
]

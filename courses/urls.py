from django.urls import path

from courses import views

app_name = "courses"

urlpatterns = [
    path("", views.course_list, name="list"),
    path("new/", views.course_create, name="create"),
    path("join/<str:token>/", views.join, name="join"),
    path("<int:course_id>/", views.course_detail, name="detail"),
    path("<int:course_id>/roster/", views.roster_import, name="roster"),
    path("<int:course_id>/students/<int:enrollment_id>/extend/", views.quota_extend, name="extend"),
    path("<int:course_id>/stop/", views.servers_stop, name="stop"),
    path("<int:course_id>/sessions/", views.session_schedule, name="sessions"),
    path("<int:course_id>/usage.csv", views.usage_csv, name="usage_csv"),
    path("<int:course_id>/end/", views.course_end, name="end"),
]

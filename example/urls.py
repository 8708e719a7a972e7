from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from example import (
    docs_pages,
    jobs_page,
    live,
    ops_more_pages,
    ops_pages,
    pipelines_page,
    rooms_views,
    views,
)
from taskstream.api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    # Pages name the SVG icon; /favicon.ico is for what asks anyway (the admin, API docs).
    path("favicon.ico", RedirectView.as_view(url=static("example/favicon.svg"), permanent=True)),
    path("api/", api.urls),
    path("", include("taskstream.health")),
    path("", include("taskstream.ops.urls")),  # /metrics
    path("", views.home, name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("signup/", views.signup, name="signup"),
    path("live/", live.live_page, name="live"),
    path("live/ping/", live.live_ping, name="live-ping"),
    path("jobs/", jobs_page.jobs_page, name="jobs"),
    path("jobs/<uuid:job_id>/", jobs_page.job_page_detail, name="job"),
    path("pipelines/", pipelines_page.pipelines_page, name="pipelines"),
    path("schedules/", pipelines_page.schedules_page, name="schedules"),
    path("ops/", ops_pages.overview, name="ops"),
    path("ops/failures/", ops_pages.failures, name="ops-failures"),
    path("ops/failures/retry/", ops_pages.retry_failed, name="ops-retry-failed"),
    path("ops/stuck/", ops_pages.stuck, name="ops-stuck"),
    path("ops/jobs/<uuid:job_id>/<slug:action>/", ops_pages.job_action, name="ops-job-action"),
    path("ops/audit/", ops_pages.audit, name="ops-audit"),
    path("ops/workers/", ops_more_pages.workers, name="ops-workers"),
    path("ops/queues/", ops_more_pages.queues, name="ops-queues"),
    path("ops/queues/purge/", ops_more_pages.queue_purge, name="ops-queue-purge"),
    path("ops/jobs/", ops_more_pages.jobs, name="ops-jobs"),
    path("ops/periodic/", ops_more_pages.periodic, name="ops-periodic"),
    path("rooms/", rooms_views.rooms_page, name="rooms"),
    path("rooms/<slug:slug>/", rooms_views.room_page, name="room"),
    path("rooms/<slug:slug>/members/", rooms_views.room_member_add, name="room-member-add"),
    path("docs/", docs_pages.docs_page, name="docs"),
    path("docs/<uuid:doc_id>/", docs_pages.doc_page, name="doc"),
]

"""The dashboard's pages: HTML shells whose scripts read and write through the JSON API."""

from flask import Blueprint, redirect, render_template, request, url_for
from queuectl_core.lifecycle import STATES
from queuectl_core.settings import SETTINGS

from . import auth, throttle

blueprint = Blueprint("dashboard", __name__)


@blueprint.app_context_processor
def _template_globals():
    # `can_change` decides whether a page shows any action (forms, buttons): a viewer's session shows none.
    return {"csrf_token": auth.csrf_token, "states": STATES, "role": auth.current_role(),
            "can_change": auth.can_change()}


@blueprint.get("/login")
def login():
    """The login form: the API token, asked once; a signed session cookie afterwards."""
    return render_template("login.html", next=auth.safe_next(request.args.get("next")))


@blueprint.post("/login")
def login_submit():
    """Check the token (and the form's CSRF token) and start a session with the token's role.

    An address that gave too many wrong tokens gets 429 (with Retry-After) before its token is even looked at."""
    target = auth.safe_next(request.form.get("next"))
    try:
        throttle.check_client()
    except throttle.TooManyFailures as refused:
        page = render_template("login.html", next=target,
                               error=f"Too many failed logins from your address: try again in {refused.retry_after} s.")
        return page, 429, {"Retry-After": str(refused.retry_after)}
    if not auth.csrf_matches(request.form.get("csrf_token", "")):
        return render_template("login.html", next=target, error="The form expired: please try again."), 400
    role = auth.role_of_token(request.form.get("token", "").strip())
    if role is None:
        throttle.record_failure()
        return render_template("login.html", next=target, error="Wrong token."), 401
    auth.log_in(role)
    return redirect(target)


@blueprint.post("/logout")
def logout():
    """End the session (the form carries the CSRF token, so another site cannot log you out)."""
    if auth.csrf_matches(request.form.get("csrf_token", "")):
        auth.log_out()
    return redirect(url_for("dashboard.login"))


@blueprint.get("/")
@auth.login_required
def overview():
    """Counts, live workers and throughput, refreshing by themselves."""
    return render_template("overview.html", page="overview")


@blueprint.get("/jobs")
@auth.login_required
def jobs():
    """Jobs by state with search, sorting and pagination."""
    return render_template("jobs.html", page="jobs")


@blueprint.get("/jobs/<job_id>")
@auth.login_required
def job(job_id):
    """One job: its fields and every run of its history."""
    return render_template("job.html", page="jobs", job_id=job_id)


@blueprint.get("/enqueue")
@auth.login_required
def enqueue():
    """The form that enqueues a job (a viewer's session gets a read-only notice instead: 403)."""
    return render_template("enqueue.html", page="enqueue"), 200 if auth.can_change() else 403


@blueprint.get("/settings")
@auth.login_required
def settings():
    """View and change the runtime settings."""
    return render_template("settings.html", page="settings", settings=SETTINGS.values())


@blueprint.get("/audit")
@auth.login_required
def audit():
    """The audit log: operators' actions, read-only."""
    return render_template("audit.html", page="audit")


@blueprint.get("/schedules")
@auth.login_required
def schedules():
    """Schedules: next and last run (with a link to that job), pause/resume, run now, delete, and a form to add."""
    return render_template("schedules.html", page="schedules")


@blueprint.get("/queues")
@auth.login_required
def queues():
    """Named queues: counts per state, limit, rate and pause, with forms to set a limit or rate and pause/resume."""
    return render_template("queues.html", page="queues")

"""Dashboard pages of the project package (home: the teams the user can see)."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from observatory.queries import visible_teams


@login_required
def home(request):
    teams = visible_teams(request.user).select_related("organization").order_by("organization__name", "name")
    return render(request, "observatory/home.html", {"teams": teams})

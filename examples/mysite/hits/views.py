import json

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from hits.models import Hit


def index(request: HttpRequest) -> HttpResponse:
    """A page that needs no database."""
    return HttpResponse("mysite is up\n", content_type="text/plain")


def hits(request: HttpRequest) -> JsonResponse:
    """Write one row and read the count back: the database round trip a real page makes."""
    Hit.objects.create(path=request.path)
    return JsonResponse({"hits": Hit.objects.count()})


def sleep(request: HttpRequest) -> JsonResponse:
    """Hold a database connection for ?seconds= (default 0.02) with SELECT SLEEP, then SELECT 1.

    Load tests aim here: each request keeps its thread's connection busy, like a slow query.
    """
    try:
        seconds = min(max(float(request.GET.get("seconds", "0.02")), 0.0), 5.0)
    except ValueError:
        return JsonResponse({"error": "seconds must be a number"}, status=400)
    with connection.cursor() as cursor:
        cursor.execute("SELECT SLEEP(%s)", [seconds])
        cursor.execute("SELECT 1")
        (one,) = cursor.fetchone()
    return HttpResponse(json.dumps({"slept": seconds, "one": one}), content_type="application/json")


def page(request: HttpRequest) -> HttpResponse:
    """A mixed page: a database wait (?seconds=, default 0.01), then a template of ?rows= rows.

    Rendering the rows is CPU work in Python, as on a real page; benchmarks aim here beside
    /db/sleep/ to see a worker rule under both kinds of load.
    """
    try:
        seconds = min(max(float(request.GET.get("seconds", "0.01")), 0.0), 5.0)
        count = min(max(int(request.GET.get("rows", "100")), 0), 5000)
    except ValueError:
        return JsonResponse({"error": "seconds and rows must be numbers"}, status=400)
    with connection.cursor() as cursor:
        cursor.execute("SELECT SLEEP(%s)", [seconds])
    rows = [
        {"name": f"item number {i}", "price": i * 1.25, "tags": ["new", f"group {i % 7}"]}
        for i in range(count)
    ]
    return render(request, "hits/page.html", {"title": "mysite", "slept": seconds, "rows": rows})

"""The stand-in's web UI: sign-in, dashboard, folders, views, jobs, builds and a live console.

Server-rendered HTML at Jenkins' own URLs (``/login``, ``/view/NAME/``, ``/job/…/N/console``),
standard library only, no external assets; the only script is the console's live follow, and a
Content-Security-Policy forbids any other. Every page says it is the dindjobs stand-in, not Jenkins.
"""
